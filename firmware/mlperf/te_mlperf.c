/* tinyedge firmware: the MLPerf Tiny / EEMBC host protocol on the UART
 * (the `--protocol mlperf` variant of firmware/app/te_app.c; docs in
 * README "MLPerf Tiny runner").
 *
 * Commands are ASCII, ended by '%', words separated by spaces:
 *   name            -> m-name-dut-[tinyedge]
 *   profile         -> m-profile-[ULPMark for tinyML Firmware V0.0.1], m-model-[<model>]
 *   timestamp       -> m-lap-us-<microseconds>
 *   db load N       -> m-[Expecting N bytes]
 *   db HH[HH]*      -> (m-load-done once N bytes are in)
 *   db print        -> m-buffer-hh-hh-... (8 bytes a line)
 *   infer N [W=10]  -> m-warmup-start-W, m-warmup-done, m-infer-start-N,
 *                      m-lap-us-T0, m-lap-us-T1, m-infer-done, m-results-[...]
 *   results         -> m-results-[...]
 * Every command, known or not, ends with m-ready; errors are e-[...] lines.
 * At boot: m-init-done, m-ready.
 *
 * The input bytes each model takes (the th_load_tensor semantics of the
 * reference submissions): ad01 640 float32 values (quantized here with the
 * model's input scale and zero point); kws01 the int8 features as they are;
 * vww01 and ic01 uint8 pixels (minus 128 gives the int8 input).  Results:
 * ad01 one value, the mean squared error between the dequantized output and
 * the float input (the anomaly score); the others the dequantized output
 * scores.  Values print with 3 decimals.
 *
 * Robust to what the runner's users meet: CR and LF are ignored; an empty
 * command (a lone '%', which a host sends to flush half a command left in
 * the buffer from an earlier run) only answers m-ready; a line with an odd
 * number of hex digits (a dropped byte) is refused whole, so the host can
 * send it again; bytes outside printable ASCII make the command refused.
 * Only ASCII is printed.  Static buffers only.  Each inference starts from a
 * copy of the loaded input (runtimes may reuse the input tensor's memory). */
#include <string.h>

#include "te_board.h"
#include "te_hal.h"
#include "te_mlperf.h"
#include "te_runtime.h"
#include "te_status.h"

#define TE_MLPERF_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define TE_MLPERF_CMD_MAX 256u
#define TE_MLPERF_MAX_WORDS 8u

static char te_mlperf_cmd[TE_MLPERF_CMD_MAX + 1u];
static uint32_t te_mlperf_pos;
static uint8_t te_mlperf_overflow;
static uint8_t te_mlperf_bad_byte;

static uint8_t te_mlperf_db[TE_MLPERF_DB_BYTES];
static uint32_t te_mlperf_db_size;
static uint32_t te_mlperf_db_pos;
static te_status_t te_mlperf_init_status = TE_ERR_NOT_READY;
static uint8_t te_mlperf_have_results;

/* ------------------------------------------------------------- printing */

static void te_mlperf_puts(const char *s)
{
    te_hal_uart_write((const uint8_t *)s, strlen(s));
}

static void te_mlperf_put_u64(uint64_t v)
{
    char buf[21];
    unsigned i = sizeof(buf) - 1u;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v != 0u && i > 0u);
    te_mlperf_puts(buf + i);
}

static void te_mlperf_put_u32(uint32_t v)
{
    te_mlperf_put_u64((uint64_t)v);
}

/* x with 3 decimals, rounded half away from zero (x * 1000 in float). */
static void te_mlperf_put_fixed3(float x)
{
    float scaled;
    uint64_t milli;
    uint32_t frac;
    char digits[4];
    if (x != x) {
        te_mlperf_puts("nan");
        return;
    }
    if (x < 0.0f) {
        te_mlperf_puts("-");
        x = -x;
    }
    scaled = x * 1000.0f + 0.5f;
    if (scaled >= 1.8e19f) {
        te_mlperf_puts("inf");
        return;
    }
    milli = (uint64_t)scaled;
    te_mlperf_put_u64(milli / 1000u);
    frac = (uint32_t)(milli % 1000u);
    digits[0] = '.';
    digits[1] = (char)('0' + frac / 100u);
    digits[2] = (char)('0' + (frac / 10u) % 10u);
    digits[3] = (char)('0' + frac % 10u);
    te_hal_uart_write((const uint8_t *)digits, 4u);
}

static void te_mlperf_ready(void)
{
    te_mlperf_puts("m-ready\r\n");
}

static void te_mlperf_error(const char *what)
{
    te_mlperf_puts("e-[");
    te_mlperf_puts(what);
    te_mlperf_puts("]\r\n");
}

static void te_mlperf_lap(void)
{
    /* microseconds of the board's counter (instructions under QEMU: virtual time) */
    uint64_t us = te_hal_counter() * 1000u / (uint64_t)TE_BOARD_COUNTS_PER_MS;
    te_mlperf_puts("m-lap-us-");
    te_mlperf_put_u64(us);
    te_mlperf_puts("\r\n");
}

/* ----------------------------------------------------------------- words */

/* Split `s` at spaces in place; returns the number of words (at most max). */
static unsigned te_mlperf_split(char *s, char **words, unsigned max)
{
    unsigned n = 0u;
    while (*s != '\0' && n < max) {
        while (*s == ' ') {
            *s++ = '\0';
        }
        if (*s == '\0') {
            break;
        }
        words[n++] = s;
        while (*s != '\0' && *s != ' ') {
            s++;
        }
    }
    return n;
}

/* A decimal of at most 9 digits; -1 when it is not one. */
static int32_t te_mlperf_number(const char *s)
{
    int32_t v = 0;
    unsigned n = 0u;
    if (s == 0 || *s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++, n++) {
        if (*s < '0' || *s > '9' || n >= 9u) {
            return -1;
        }
        v = v * 10 + (int32_t)(*s - '0');
    }
    return v;
}

static int te_mlperf_hex(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* --------------------------------------------------------- the th_ layer */

#if defined(TE_MLPERF_INPUT_FLOAT32)
static float te_mlperf_float_at(uint32_t i)
{
    float f;
    memcpy(&f, te_mlperf_db + 4u * i, sizeof(f));   /* little-endian float32 from the host */
    return f;
}
#endif

/* The model's int8 input, kept here: a runtime may reuse its input tensor's memory for
 * activations during an inference, so every inference of `infer N W` starts from this copy. */
static int8_t te_mlperf_input[TE_MLPERF_INPUT_BYTES];

static te_status_t te_mlperf_invoke(void)
{
    memcpy(te_runtime_input(0), te_mlperf_input, TE_MLPERF_INPUT_BYTES);
    return te_runtime_invoke();
}

/* th_load_tensor: the db buffer into the model's int8 input. */
static void te_mlperf_load_tensor(void)
{
    const te_model_info_t *info = te_runtime_info();
    int8_t *in = te_mlperf_input;
    uint32_t i, n = info->inputs[0].bytes < TE_MLPERF_INPUT_BYTES ? info->inputs[0].bytes : TE_MLPERF_INPUT_BYTES;
#if defined(TE_MLPERF_INPUT_FLOAT32)
    float scale = info->inputs[0].scale;
    int32_t zp = info->inputs[0].zero_point;
    for (i = 0; i < n; i++) {
        float v = te_mlperf_float_at(i) / scale + (float)zp;
        int32_t q = v >= 0.0f ? (int32_t)(v + 0.5f) : -(int32_t)(-v + 0.5f);
        in[i] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
    }
#elif defined(TE_MLPERF_INPUT_UINT8)
    for (i = 0; i < n; i++) {
        in[i] = (int8_t)(int32_t)((int32_t)te_mlperf_db[i] - 128);
    }
#else
    memcpy(in, te_mlperf_db, n);
    (void)i;
#endif
}

static float te_mlperf_dequant(uint32_t i)
{
    const te_model_info_t *info = te_runtime_info();
    const int8_t *y = te_runtime_output(0);
    return (float)((int32_t)y[i] - info->outputs[0].zero_point) * info->outputs[0].scale;
}

/* th_results */
static void te_mlperf_results(void)
{
    const te_model_info_t *info = te_runtime_info();
    uint32_t i, n = info->outputs[0].bytes;
    te_mlperf_puts("m-results-[");
#if defined(TE_MLPERF_RESULT_MSE)
    {
        float sum = 0.0f;
        for (i = 0; i < n; i++) {
            float d = te_mlperf_dequant(i) - te_mlperf_float_at(i);
            float sq = d * d;
            sum = sum + sq;
        }
        te_mlperf_put_fixed3(sum / (float)n);
    }
#else
    for (i = 0; i < n; i++) {
        if (i) {
            te_mlperf_puts(",");
        }
        te_mlperf_put_fixed3(te_mlperf_dequant(i));
    }
#endif
    te_mlperf_puts("]\r\n");
}

/* ---------------------------------------------------------------- commands */

static void te_mlperf_db_cmd(char **w, unsigned n)
{
    if (n < 2u) {
        te_mlperf_error("Command 'db' requires a subcommand");
    } else if (strcmp(w[1], "load") == 0) {
        int32_t size = n < 3u ? -1 : te_mlperf_number(w[2]);
        if (n < 3u) {
            te_mlperf_error("Command 'db load' requires the # of bytes");
        } else if (size <= 0) {
            te_mlperf_error("Command 'db load' must be >0 bytes");
        } else if ((uint32_t)size > TE_MLPERF_DB_BYTES) {
            te_mlperf_puts("e-[Supplied buffer size ");
            te_mlperf_put_u32((uint32_t)size);
            te_mlperf_puts(" exceeds maximum of ");
            te_mlperf_put_u32(TE_MLPERF_DB_BYTES);
            te_mlperf_puts("]\r\n");
        } else {
            te_mlperf_db_size = (uint32_t)size;
            te_mlperf_db_pos = 0u;
            te_mlperf_puts("m-[Expecting ");
            te_mlperf_put_u32(te_mlperf_db_size);
            te_mlperf_puts(" bytes]\r\n");
        }
    } else if (strcmp(w[1], "print") == 0) {
        static const char hexd[] = "0123456789abcdef";
        uint32_t i;
        for (i = 0; i < te_mlperf_db_pos; i++) {
            char b[3];
            if (i % 8u == 0u) {
                te_mlperf_puts("m-buffer-");
            }
            b[0] = hexd[te_mlperf_db[i] >> 4];
            b[1] = hexd[te_mlperf_db[i] & 0xFu];
            b[2] = (i % 8u == 7u || i + 1u == te_mlperf_db_pos) ? '\0' : '-';
            te_hal_uart_write((const uint8_t *)b, b[2] ? 3u : 2u);
            if (b[2] == '\0') {
                te_mlperf_puts("\r\n");
            }
        }
    } else {
        const char *hex = w[1];
        size_t len = strlen(hex), i;
        if (te_mlperf_db_size == 0u) {
            te_mlperf_error("Command 'db load' must come first");
            return;
        }
        if ((len & 1u) != 0u) {
            te_mlperf_error("Insufficent number of hex digits");   /* the reference firmware's words */
            return;
        }
        for (i = 0; i < len; i += 2u) {           /* check the whole line before storing any of it */
            if (te_mlperf_hex(hex[i]) < 0 || te_mlperf_hex(hex[i + 1u]) < 0) {
                char bad[3];
                bad[0] = hex[i];
                bad[1] = hex[i + 1u];
                bad[2] = '\0';
                te_mlperf_puts("e-[Invalid hex digit '");
                te_mlperf_puts(bad);
                te_mlperf_puts("']\r\n");
                return;
            }
        }
        for (i = 0; i < len && te_mlperf_db_pos < te_mlperf_db_size; i += 2u) {
            te_mlperf_db[te_mlperf_db_pos++] = (uint8_t)((te_mlperf_hex(hex[i]) << 4) | te_mlperf_hex(hex[i + 1u]));
            if (te_mlperf_db_pos == te_mlperf_db_size) {
                te_mlperf_puts("m-load-done\r\n");   /* digits past N are disregarded */
            }
        }
    }
}

static void te_mlperf_infer_cmd(char **w, unsigned n)
{
    int32_t count = 1, warmup = 10;
    te_status_t st = TE_OK;
    if (n >= 2u) {
        count = te_mlperf_number(w[1]);
        if (count <= 0) {
            te_mlperf_error("Inference iterations must be >0");
            return;
        }
    }
    if (n >= 3u) {
        warmup = te_mlperf_number(w[2]);
        if (warmup < 0) {
            te_mlperf_error("Inference warmup must be >=0");
            return;
        }
    }
    if (te_mlperf_init_status != TE_OK) {
        te_mlperf_error("The model did not initialize");
        return;
    }
    if (te_mlperf_db_size != TE_MLPERF_DB_BYTES || te_mlperf_db_pos != te_mlperf_db_size) {
        te_mlperf_puts("e-[Input not loaded: ");
        te_mlperf_put_u32(te_mlperf_db_size == TE_MLPERF_DB_BYTES ? te_mlperf_db_pos : 0u);
        te_mlperf_puts(" of ");
        te_mlperf_put_u32(TE_MLPERF_DB_BYTES);
        te_mlperf_puts(" bytes]\r\n");
        return;
    }
    te_mlperf_load_tensor();
    te_mlperf_puts("m-warmup-start-");
    te_mlperf_put_u32((uint32_t)warmup);
    te_mlperf_puts("\r\n");
    while (warmup-- > 0 && st == TE_OK) {
        st = te_mlperf_invoke();
    }
    te_mlperf_puts("m-warmup-done\r\n");
    te_mlperf_puts("m-infer-start-");
    te_mlperf_put_u32((uint32_t)count);
    te_mlperf_puts("\r\n");
    te_mlperf_lap();
    while (count-- > 0 && st == TE_OK) {
        st = te_mlperf_invoke();
    }
    te_mlperf_lap();
    te_mlperf_puts("m-infer-done\r\n");
    if (st != TE_OK) {
        te_mlperf_puts("e-[Inference failed: status ");
        te_mlperf_put_u32((uint32_t)st);
        te_mlperf_puts("]\r\n");
        te_mlperf_have_results = 0u;
        return;
    }
    te_mlperf_have_results = 1u;
    te_mlperf_results();
}

static void te_mlperf_dispatch(char *cmd)
{
    char *w[TE_MLPERF_MAX_WORDS];
    unsigned n = te_mlperf_split(cmd, w, TE_MLPERF_MAX_WORDS);
    if (n == 0u) {
        return;                          /* a lone '%': the host flushing the line */
    } else if (strcmp(w[0], "name") == 0) {
        te_mlperf_puts("m-name-dut-[tinyedge]\r\n");
    } else if (strcmp(w[0], "profile") == 0) {
        te_mlperf_puts("m-profile-[" TE_MLPERF_FW_VERSION "]\r\n");
        te_mlperf_puts("m-model-[" TE_MLPERF_MODEL "]\r\n");
    } else if (strcmp(w[0], "timestamp") == 0) {
        te_mlperf_lap();
    } else if (strcmp(w[0], "help") == 0) {
        te_mlperf_puts(TE_MLPERF_FW_VERSION "\r\n\r\n"
                       "help         : Print this information\r\n"
                       "name         : Print the name of the device\r\n"
                       "timestamp    : Generate a timestamp\r\n"
                       "db SUBCMD    : Manipulate a generic byte buffer\r\n"
                       "  load N     : Allocate N bytes and set load counter\r\n"
                       "  db HH[HH]* : Load 8-bit hex byte(s) until N bytes\r\n"
                       "  print      : Print the loaded bytes as hex\r\n"
                       "infer N [W=10]: Load input, execute N inferences after W warmup loops\r\n"
                       "results      : Return the result vector\r\n");
    } else if (strcmp(w[0], "db") == 0) {
        te_mlperf_db_cmd(w, n);
    } else if (strcmp(w[0], "infer") == 0) {
        te_mlperf_infer_cmd(w, n);
    } else if (strcmp(w[0], "results") == 0) {
        if (te_mlperf_have_results) {
            te_mlperf_results();
        } else {
            te_mlperf_error("No results: run infer first");
        }
    } else {
        te_mlperf_puts("e-[Unknown command: ");
        te_mlperf_puts(w[0]);
        te_mlperf_puts("]\r\n");
    }
}

void te_app_run(void)
{
    te_mlperf_init_status = te_runtime_init();
    if (te_mlperf_init_status != TE_OK) {
        te_mlperf_puts("e-[The model did not initialize: status ");
        te_mlperf_put_u32((uint32_t)te_mlperf_init_status);
        te_mlperf_puts("]\r\n");
    }
    te_mlperf_puts("m-timestamp-mode-performance\r\n");
    te_mlperf_puts("m-init-done\r\n");
    te_mlperf_ready();
    for (;;) {
        int c = te_hal_uart_getc(-1);
        if (c < 0 || c == '\r' || c == '\n') {
            continue;
        }
        if (c == '%') {
            te_mlperf_cmd[te_mlperf_pos] = '\0';
            if (te_mlperf_overflow) {
                te_mlperf_error("Command too long");
            } else if (te_mlperf_bad_byte) {
                te_mlperf_error("Command with a byte that is not printable ASCII");
            } else {
                te_mlperf_dispatch(te_mlperf_cmd);
            }
            te_mlperf_ready();
            te_mlperf_pos = 0u;
            te_mlperf_overflow = 0u;
            te_mlperf_bad_byte = 0u;
        } else if (c < 0x20 || c > 0x7E) {
            te_mlperf_bad_byte = 1u;
        } else if (te_mlperf_pos < TE_MLPERF_CMD_MAX) {
            te_mlperf_cmd[te_mlperf_pos++] = (char)c;
        } else {
            te_mlperf_overflow = 1u;
        }
    }
}
