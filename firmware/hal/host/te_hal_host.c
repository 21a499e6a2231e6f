/* tinyedge firmware: board layer of the host build (board "host").
 *
 * The UART is the process's stdin/stdout, unbuffered (the host flasher and
 * `tinyedge emulate` run the program behind a pty); the counter is the
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID) in nanoseconds: the time the
 * inference really ran, without the time a loaded machine preempted it (with
 * CLOCK_MONOTONIC, per-op profiles of ResNet-8 and VWW summed to 0.76x and
 * 4.97x of the whole at load 12).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "te_board.h"
#include "te_hal.h"

void te_hal_init(void)
{
    struct termios tio;
    /* Behind a pty: raw bytes, no echo, no line editing, no CR/LF mapping. */
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tio) == 0) {
        tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
        tio.c_oflag &= ~(tcflag_t)OPOST;
        tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
        tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
        tio.c_cflag |= CS8;
        tio.c_cc[VMIN] = 1;
        tio.c_cc[VTIME] = 0;
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &tio);
    }
    setvbuf(stdout, NULL, _IONBF, 0);
}

void te_hal_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1); /* the other end went away: nothing left to serve */
        }
        buf += (size_t)w;
        n -= (size_t)w;
    }
}

int te_hal_uart_getc(int32_t timeout_ms)
{
    struct pollfd p;
    uint8_t c;
    p.fd = STDIN_FILENO;
    p.events = POLLIN;
    p.revents = 0;
    for (;;) {
        int r = poll(&p, 1, timeout_ms < 0 ? -1 : (int)timeout_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        break;
    }
    for (;;) {
        ssize_t got = read(STDIN_FILENO, &c, 1);
        if (got == 1) {
            return (int)c;
        }
        if (got < 0 && errno == EINTR) {
            continue;
        }
        _exit(0); /* end of input: the host closed the pty */
    }
}

uint64_t te_hal_counter(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* te_hal_counter_unit, te_hal_board_id, te_hal_clock_hz: firmware/hal/te_hal_board.c */
