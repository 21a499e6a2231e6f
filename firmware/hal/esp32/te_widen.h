/* tinyedge firmware: widen a free-running 32-bit counter to 64 bits.
 * Portable (no ESP-IDF headers); compiled and tested on the host too.
 * The caller reads it at least once per 2^32 counts and from one task.
 */
#ifndef TE_WIDEN_H
#define TE_WIDEN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t last;
    uint64_t high;
} te_widen_t;

static inline uint64_t te_widen(te_widen_t *w, uint32_t now)
{
    if (now < w->last) {
        w->high += (uint64_t)1 << 32;
    }
    w->last = now;
    return w->high | (uint64_t)now;
}

#ifdef __cplusplus
}
#endif

#endif /* TE_WIDEN_H */
