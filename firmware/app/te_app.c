/* tinyedge firmware: the inference loop (see te_app.h, docs/protocol.md).
 * Talks to the model only through te_runtime.h and to the board only through
 * te_hal.h.  Static buffers only. */
#include "te_app.h"

#include <string.h>

#include "te_hal.h"
#include "te_profile.h"
#include "te_proto.h"
#include "te_runtime.h"
#include "te_status.h"

static te_proto_rx_t te_app_rx;
static te_proto_tx_t te_app_tx;
static te_status_t te_app_init_status = TE_ERR_NOT_READY;

/* The request being assembled: its sequence number and the next input byte
 * expected (inputs are concatenated in index order). */
static uint16_t te_app_cur_seq;
static uint8_t te_app_have_seq;
static uint32_t te_app_next;

/* The length of a string of at most 255 characters (longer ones are cut there).  Not strlen: the C
 * library's is word-at-a-time and 220 bytes on a Cortex-M, and GCC turns an unbounded loop into a
 * call to it; these strings are short. */
static size_t te_app_strlen(const char *s)
{
    size_t n = 0;
    while (n < 255u && s[n] != '\0') {
        n++;
    }
    return n;
}

static void te_app_puts(const char *s)
{
    te_hal_uart_write((const uint8_t *)s, te_app_strlen(s));
}

static const te_model_info_t *te_app_info(void)
{
    return te_app_init_status == TE_OK ? te_runtime_info() : (const te_model_info_t *)0;
}

static uint32_t te_app_input_total(const te_model_info_t *info)
{
    uint32_t i, total = 0;
    if (info == 0) {
        return 0;
    }
    for (i = 0; i < info->num_inputs; i++) {
        total += info->inputs[i].bytes;
    }
    return total;
}

static void te_app_announce(void)
{
    static const char hex[] = "0123456789abcdef";
    const te_model_info_t *info = te_runtime_info();
    char model[17];
    char proto[4];
    unsigned i;
    for (i = 0; i < 8u; i++) {
        uint8_t b = info ? info->model_sha256[i] : 0u;
        model[2u * i] = hex[b >> 4];
        model[2u * i + 1u] = hex[b & 0x0Fu];
    }
    model[16] = '\0';
    proto[0] = (char)('0' + (TE_PROTO_VERSION / 10u) % 10u);
    proto[1] = (char)('0' + TE_PROTO_VERSION % 10u);
    proto[2] = '\0';
    te_app_puts("tinyedge ready board=");
    te_app_puts(te_hal_board_id());
    te_app_puts(" runtime=");
    te_app_puts(info && info->runtime ? info->runtime : "none");
    te_app_puts(" model=");
    te_app_puts(model);
    te_app_puts(" proto=");
    te_app_puts(proto[0] == '0' ? proto + 1 : proto);
    te_app_puts(" unit=");
    te_app_puts(te_hal_counter_unit());
    te_app_puts("\n");
}

static void te_app_put_str(const char *s)
{
    size_t n = s ? te_app_strlen(s) : 0u;
    te_proto_tx_u8(&te_app_tx, (uint8_t)n);
    te_proto_tx_put(&te_app_tx, s, n);
}

static void te_app_put_tensor(const te_tensor_info_t *t)
{
    uint32_t scale_bits;
    uint8_t d, rank = t->rank > TE_MAX_DIMS ? (uint8_t)TE_MAX_DIMS : t->rank;
    te_proto_tx_u8(&te_app_tx, t->dtype);
    te_proto_tx_u8(&te_app_tx, rank);
    for (d = 0; d < rank; d++) {
        te_proto_tx_u32(&te_app_tx, (uint32_t)t->dims[d]);
    }
    te_proto_tx_u32(&te_app_tx, t->bytes);
    memcpy(&scale_bits, &t->scale, sizeof scale_bits);
    te_proto_tx_u32(&te_app_tx, scale_bits);
    te_proto_tx_u32(&te_app_tx, (uint32_t)t->zero_point);
}

static void te_app_hello(uint16_t seq)
{
    const te_model_info_t *info = te_runtime_info();
    uint8_t i;
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_HELLO_REPLY, seq);
    te_proto_tx_u8(&te_app_tx, (uint8_t)TE_PROTO_VERSION);
    te_proto_tx_u8(&te_app_tx, (uint8_t)te_app_init_status);
    te_proto_tx_u32(&te_app_tx, (uint32_t)TE_PROTO_MAX_FRAME);
    te_proto_tx_u32(&te_app_tx, te_hal_clock_hz());
    te_proto_tx_u32(&te_app_tx, info ? info->arena_bytes : 0u);
    for (i = 0; i < 32u; i++) {   /* the model hash, zeros without a model */
        te_proto_tx_u8(&te_app_tx, info ? info->model_sha256[i] : 0u);
    }
    te_app_put_str(te_hal_board_id());
    te_app_put_str(info ? info->runtime : "none");
    te_app_put_str(te_hal_counter_unit());
    te_proto_tx_u8(&te_app_tx, info ? info->num_inputs : 0u);
    te_proto_tx_u8(&te_app_tx, info ? info->num_outputs : 0u);
    for (i = 0; info && i < info->num_inputs; i++) {
        te_app_put_tensor(&info->inputs[i]);
    }
    for (i = 0; info && i < info->num_outputs; i++) {
        te_app_put_tensor(&info->outputs[i]);
    }
    te_proto_tx_end(&te_app_tx);
}

static void te_app_error(uint16_t seq, te_status_t st)
{
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_ERROR, seq);
    te_proto_tx_u8(&te_app_tx, (uint8_t)st);
    te_proto_tx_u8(&te_app_tx, (uint8_t)TE_PROTO_VERSION);
    te_proto_tx_end(&te_app_tx);
}

static void te_app_ack(uint16_t seq, te_status_t st)
{
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_ACK, seq);
    te_proto_tx_u8(&te_app_tx, (uint8_t)st);
    te_proto_tx_u32(&te_app_tx, te_app_next);
    te_proto_tx_end(&te_app_tx);
}

/* Copy data to the concatenated input space at offset. */
static void te_app_store(const te_model_info_t *info, uint32_t offset, const uint8_t *data, uint32_t n)
{
    uint32_t i, base = 0;
    for (i = 0; i < info->num_inputs && n > 0u; i++) {
        uint32_t size = info->inputs[i].bytes;
        if (offset < base + size) {
            uint32_t at = offset - base;
            uint32_t take = size - at < n ? size - at : n;
            int8_t *dst = te_runtime_input(i);
            if (dst != 0) {
                memcpy((uint8_t *)dst + at, data, take);
            }
            data += take;
            offset += take;
            n -= take;
        }
        base += size;
    }
}

static void te_app_run_inference(uint16_t seq, const te_model_info_t *info)
{
    uint64_t t0, t1;
    te_status_t st;
    uint8_t i;
    t0 = te_hal_counter();
    st = te_runtime_invoke();
    t1 = te_hal_counter();
    te_app_next = 0u;   /* the input is consumed: a retry sends it again */
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_RESULT, seq);
    te_proto_tx_u8(&te_app_tx, (uint8_t)st);
    te_proto_tx_u64(&te_app_tx, t1 - t0);
    for (i = 0; st == TE_OK && i < info->num_outputs; i++) {
        const int8_t *y = te_runtime_output(i);
        if (y != 0) {
            te_proto_tx_put(&te_app_tx, y, info->outputs[i].bytes);
        }
    }
    te_proto_tx_end(&te_app_tx);
}

#if defined(TE_PROFILE)
/* The dump op's output, streamed from inside its end hook (the inference is paused there). */
static void te_app_dump(uint32_t op, const void *data, uint32_t bytes)
{
    /* te_app_tx is free: the result frame starts only after the inference */
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_TENSOR, te_app_cur_seq);
    te_proto_tx_u16(&te_app_tx, (uint16_t)op);
    te_proto_tx_u32(&te_app_tx, bytes);
    te_proto_tx_put(&te_app_tx, data, bytes);
    te_proto_tx_end(&te_app_tx);
}

static void te_app_profile_request(const te_frame_t *f)
{
    uint16_t dump_op;
    if (f->body_len != 3u) {
        te_app_error(f->seq, TE_ERR_PROTOCOL);
        return;
    }
    dump_op = (uint16_t)(f->body[1] | ((uint16_t)f->body[2] << 8));
    te_profile_configure(f->body[0], dump_op, te_app_dump);
    te_app_ack(f->seq, TE_OK);
}

static void te_app_run_profiled(uint16_t seq, const te_model_info_t *info)
{
    uint64_t t0, t1;
    te_status_t st;
    uint32_t i, n;
    const te_profile_op_t *ops;
    te_profile_start();
    t0 = te_hal_counter();
    st = te_runtime_invoke();
    t1 = te_hal_counter();
    te_profile_stop();
    te_app_next = 0u;
    n = te_profile_num_ops();
    ops = te_profile_ops();
    te_proto_tx_begin(&te_app_tx, te_hal_uart_write, TE_MSG_PROFILE_RESULT, seq);
    te_proto_tx_u8(&te_app_tx, (uint8_t)st);
    te_proto_tx_u64(&te_app_tx, t1 - t0);
    te_proto_tx_u64(&te_app_tx, te_profile_cal_sum());
    te_proto_tx_u16(&te_app_tx, (uint16_t)TE_PROFILE_CAL_PAIRS);
    te_proto_tx_u16(&te_app_tx, (uint16_t)n);
    te_proto_tx_u8(&te_app_tx, te_profile_overflow());
    for (i = 0; i < n; i++) {
        te_proto_tx_u64(&te_app_tx, ops[i].raw);
        te_proto_tx_u32(&te_app_tx, ops[i].crc);
        te_proto_tx_u32(&te_app_tx, ops[i].bytes);
    }
    for (i = 0; st == TE_OK && i < info->num_outputs; i++) {
        const int8_t *y = te_runtime_output(i);
        if (y != 0) {
            te_proto_tx_put(&te_app_tx, y, info->outputs[i].bytes);
        }
    }
    te_proto_tx_end(&te_app_tx);
}
#endif

static void te_app_input(const te_frame_t *f)
{
    const te_model_info_t *info = te_app_info();
    uint32_t total = te_app_input_total(info);
    uint8_t flags;
    uint32_t offset, len;
    if (f->body_len < 5u) {
        te_app_error(f->seq, TE_ERR_PROTOCOL);
        return;
    }
    flags = f->body[0];
    offset = te_proto_get_u32(f->body + 1);
    len = f->body_len - 5u;
    if (info == 0) {
        if (flags & (TE_INPUT_ACK | TE_INPUT_LAST)) {
            te_app_error(f->seq, te_app_init_status == TE_OK ? TE_ERR_NOT_READY : te_app_init_status);
        }
        return;
    }
    if (!te_app_have_seq || f->seq != te_app_cur_seq) {
        te_app_have_seq = 1u;
        te_app_cur_seq = f->seq;
        te_app_next = 0u;
    }
    if (offset > total || len > total - offset) {
        te_app_error(f->seq, TE_ERR_OVERFLOW);
        return;
    }
    if (offset <= te_app_next) {
        te_app_store(info, offset, f->body + 5, len);
        te_app_next = offset + len;
    }
    /* else: a gap (a chunk was lost); drop it, the ACK names te_app_next */
    if ((flags & TE_INPUT_LAST) && te_app_next == total) {
#if defined(TE_PROFILE)
        if (te_profile_enabled()) {
            te_app_run_profiled(f->seq, info);
            return;
        }
#endif
        te_app_run_inference(f->seq, info);
    } else if (flags & (TE_INPUT_ACK | TE_INPUT_LAST)) {
        te_app_ack(f->seq, TE_OK);
    }
}

static void te_app_handle(const te_frame_t *f)
{
    if (f->type & 0x80u) {
        return;   /* a reply (an echo, or our own frame looped back): ignore */
    }
    if (f->version != TE_PROTO_VERSION) {
        te_app_error(f->seq, TE_ERR_PROTOCOL);
        return;
    }
    switch (f->type) {
    case TE_MSG_HELLO:
        te_app_hello(f->seq);
        break;
    case TE_MSG_INPUT:
        te_app_input(f);
        break;
#if defined(TE_PROFILE)
    case TE_MSG_PROFILE:
        te_app_profile_request(f);
        break;
#endif
    default:
        te_app_error(f->seq, TE_ERR_UNSUPPORTED);
        break;
    }
}

void te_app_run(void)
{
    te_frame_t f;
    te_proto_rx_init(&te_app_rx);
    te_app_init_status = te_runtime_init();
    te_app_announce();
    for (;;) {
        int c = te_hal_uart_getc(-1);
        if (c < 0) {
            continue;
        }
        if (te_proto_rx_feed(&te_app_rx, (uint8_t)c, &f)) {
            te_app_handle(&f);
        }
    }
}
