/* tinyedge firmware: the one status enum every firmware function returns. */
#ifndef TE_STATUS_H
#define TE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TE_OK = 0,
    TE_ERR_ARG = 1,          /* a bad argument (null pointer, index out of range) */
    TE_ERR_UNSUPPORTED = 2,  /* an op or option this build cannot run */
    TE_ERR_ARENA = 3,        /* the arena is too small */
    TE_ERR_NOT_READY = 4,    /* init was not called, or failed */
    TE_ERR_PROTOCOL = 5,     /* a frame that breaks the protocol */
    TE_ERR_CRC = 6,          /* a frame whose CRC does not match */
    TE_ERR_OVERFLOW = 7,     /* a frame or tensor larger than the buffer */
    TE_ERR_INTERNAL = 8      /* a bug */
} te_status_t;

#ifdef __cplusplus
}
#endif

#endif /* TE_STATUS_H */
