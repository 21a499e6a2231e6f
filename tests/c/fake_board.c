/* A FAKE board for the link tests: te_app.c + te_proto.c on a stdio board
 * layer with a fake model (not a neural network), so the protocol and the
 * device loop are tested without the code generator.
 *
 * The fake model has two int8 inputs (3000 and 2000 bytes) and two int8
 * outputs (16 and 4 bytes):
 *   y0[j] = low byte of sum_{i%16==j} x0[i]*(j+1) + sum_{i%16==j} x1[i]
 *   y1[k] = low byte of sum_{i%4==k} x1[i] >> 2  (arithmetic shift)
 * tests/test_device.py computes the same in numpy.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "te_app.h"
#include "te_hal.h"
#include "te_runtime.h"

/* ---- board layer on stdin/stdout ---- */
void te_hal_init(void) {}

void te_hal_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        buf += (size_t)w;
        n -= (size_t)w;
    }
}

int te_hal_uart_getc(int32_t timeout_ms)
{
    static uint8_t rb[4096];
    static size_t rn, rp;
    if (rp == rn) {
        struct pollfd pfd;
        ssize_t r;
        pfd.fd = STDIN_FILENO;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)timeout_ms) <= 0) {
            return -1;
        }
        r = read(STDIN_FILENO, rb, sizeof rb);
        if (r <= 0) {
            _exit(0); /* the host went away */
        }
        rn = (size_t)r;
        rp = 0;
    }
    return rb[rp++];
}

uint64_t te_hal_counter(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *te_hal_counter_unit(void) { return "ns"; }
const char *te_hal_board_id(void) { return "fake-host"; }
uint32_t te_hal_clock_hz(void) { return 0; }

/* ---- fake runtime ---- */
static int8_t x0[3000], x1[2000], y0[16], y1[4];
static const te_tensor_info_t ins[2] = {
    {.dtype = TE_DTYPE_INT8, .rank = 3, .dims = {1, 30, 100}, .bytes = 3000, .scale = 0.5f, .zero_point = -1},
    {.dtype = TE_DTYPE_INT8, .rank = 2, .dims = {1, 2000}, .bytes = 2000, .scale = 0.25f, .zero_point = 3},
};
static const te_tensor_info_t outs[2] = {
    {.dtype = TE_DTYPE_INT8, .rank = 2, .dims = {1, 16}, .bytes = 16, .scale = 0.125f, .zero_point = 0},
    {.dtype = TE_DTYPE_INT8, .rank = 2, .dims = {1, 4}, .bytes = 4, .scale = 1.0f, .zero_point = -128},
};
static te_model_info_t info = {
    .runtime = "aot",
    .model_sha256 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                     16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
    .arena_bytes = 5020, .num_inputs = 2, .num_outputs = 2, .inputs = ins, .outputs = outs,
};

te_status_t te_runtime_init(void) { return TE_OK; }
const te_model_info_t *te_runtime_info(void) { return &info; }
int8_t *te_runtime_input(uint32_t i) { return i == 0 ? x0 : i == 1 ? x1 : (int8_t *)0; }
const int8_t *te_runtime_output(uint32_t i) { return i == 0 ? y0 : i == 1 ? y1 : (const int8_t *)0; }

te_status_t te_runtime_invoke(void)
{
    int32_t acc[16] = {0}, acc1[4] = {0};
    int i;
    for (i = 0; i < 3000; i++) {
        acc[i % 16] += (int32_t)x0[i] * (i % 16 + 1);
    }
    for (i = 0; i < 2000; i++) {
        acc[i % 16] += x1[i];
        acc1[i % 4] += x1[i];
    }
    for (i = 0; i < 16; i++) {
        y0[i] = (int8_t)(uint8_t)((uint32_t)acc[i] & 0xFFu);
    }
    for (i = 0; i < 4; i++) {
        int32_t v = acc1[i] >= 0 ? acc1[i] / 4 : -((-acc1[i] + 3) / 4); /* floor(acc/4) */
        y1[i] = (int8_t)(uint8_t)((uint32_t)v & 0xFFu);
    }
    /* clobber the inputs, as an arena that reuses input memory would */
    memset(x0, 0x55, sizeof x0);
    return TE_OK;
}

int main(void)
{
    te_hal_init();
    te_app_run();
    return 0;
}
