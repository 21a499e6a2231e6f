/* tinyedge firmware: the serial protocol (framing + messages), device side.
 *
 * Specified in docs/protocol.md.  A frame on the wire is
 *     COBS( header[4] | body | crc32_le[4] ) 0x00
 * header = { 0xA0 | version, type, seq_lo, seq_hi }; the CRC is CRC-32
 * (zlib / ISO-HDLC) over header and body.  Text (the board's own printf
 * output) may share the line between frames.
 *
 * Portable C99, no heap: the receive buffer is static, sized by
 * TE_PROTO_MAX_FRAME (decoded bytes of the largest frame accepted).
 */
#ifndef TE_PROTO_H
#define TE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "te_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_PROTO_VERSION 1u
#define TE_PROTO_MAGIC 0xA0u         /* high nibble of header byte 0 */
#define TE_PROTO_HEADER_BYTES 4u
#define TE_PROTO_CRC_BYTES 4u

/* Largest decoded frame (header + body + CRC) the device accepts.  The host
 * learns it from the hello reply and chunks inputs to fit. */
#ifndef TE_PROTO_MAX_FRAME
#define TE_PROTO_MAX_FRAME 2064u
#endif

/* Bytes of line noise the receiver keeps room for in front of a frame that
 * arrives without a delimiter before it (a frame is still found after them). */
#ifndef TE_PROTO_RAW_SLACK
#define TE_PROTO_RAW_SLACK 64u
#endif

/* Raw (COBS-encoded) bytes of the largest frame (one code byte per 254) plus
 * the slack: a longer chunk is dropped whole. */
#define TE_PROTO_RAW_MAX (TE_PROTO_MAX_FRAME + TE_PROTO_MAX_FRAME / 254u + 2u + TE_PROTO_RAW_SLACK)

/* Message types.  Requests (host -> device) have bit 7 clear, replies set. */
enum {
    TE_MSG_HELLO = 0x01,      /* request: empty body */
    TE_MSG_INPUT = 0x02,      /* request: flags u8, offset u32, data */
    TE_MSG_PROFILE = 0x03,    /* request: mode u8 (1 on, 2 CRCs), dump_op u16 (profile builds; others answer UNSUPPORTED) */
    TE_MSG_HELLO_REPLY = 0x81,
    TE_MSG_ACK = 0x82,        /* reply: status u8, next offset u32 */
    TE_MSG_RESULT = 0x83,     /* reply: status u8, counter delta u64, outputs */
    TE_MSG_PROFILE_RESULT = 0x84, /* reply: status u8, count u64, cal_sum u64, cal_pairs u16,
                                     num_ops u16, flags u8, {raw u64, crc u32, bytes u32} x num_ops, outputs */
    TE_MSG_TENSOR = 0x85,     /* reply (before PROFILE_RESULT): op u16, bytes u32, data */
    TE_MSG_ERROR = 0xFF       /* reply: status u8, device protocol version u8 */
};

/* Flags of an INPUT chunk. */
#define TE_INPUT_ACK 0x01u    /* reply with ACK after this chunk */
#define TE_INPUT_LAST 0x02u   /* last chunk: run inference, reply with RESULT */

/* CRC-32 (reflected 0xEDB88320, init and xorout 0xFFFFFFFF), as zlib.crc32:
 * te_crc32(0, p, n) over a whole buffer, or chained over pieces. */
uint32_t te_crc32(uint32_t crc, const uint8_t *p, size_t n);

/* Decode a COBS block (without the 0x00 delimiter) of n bytes into out
 * (which may equal in).  Returns the decoded length, or -1 when the input is
 * malformed (a zero byte or a code past the end) or out of room. */
int32_t te_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* A decoded frame; body points into the receiver's buffer and stays valid
 * until the next call to te_proto_rx_feed. */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    const uint8_t *body;
    uint32_t body_len;
} te_frame_t;

/* The receiver: collects the bytes between 0x00 delimiters.  A chunk longer
 * than TE_PROTO_RAW_MAX is dropped whole. */
typedef struct {
    uint8_t raw[TE_PROTO_RAW_MAX];
    uint32_t n;
    uint8_t overflow;
    uint32_t dropped;          /* chunks that were not a valid frame */
} te_proto_rx_t;

void te_proto_rx_init(te_proto_rx_t *rx);

/* Feed one byte.  Returns 1 and fills *f when it completes a valid frame,
 * else 0.  A chunk that does not decode at its start is searched for a frame
 * starting later (garbage without a delimiter before a frame). */
int te_proto_rx_feed(te_proto_rx_t *rx, uint8_t byte, te_frame_t *f);

/* Check a whole chunk (no delimiter) for a frame; decodes it in place.
 * Returns 1 and fills *f on success (used by te_proto_rx_feed and tests). */
int te_proto_parse_chunk(uint8_t *chunk, uint32_t n, te_frame_t *f);

/* The transmitter: COBS-encodes on the fly through a 254-byte block, so a
 * reply of any size streams out without a frame buffer. */
typedef void (*te_write_fn)(const uint8_t *buf, size_t n);

typedef struct {
    te_write_fn write;
    uint32_t crc;
    uint8_t n;                 /* bytes in block */
    uint8_t block[255];        /* block[0] is the code byte */
} te_proto_tx_t;

void te_proto_tx_begin(te_proto_tx_t *tx, te_write_fn write, uint8_t type, uint16_t seq);
void te_proto_tx_put(te_proto_tx_t *tx, const void *data, size_t n);
void te_proto_tx_u8(te_proto_tx_t *tx, uint8_t v);
void te_proto_tx_u16(te_proto_tx_t *tx, uint16_t v);
void te_proto_tx_u32(te_proto_tx_t *tx, uint32_t v);
void te_proto_tx_u64(te_proto_tx_t *tx, uint64_t v);
void te_proto_tx_end(te_proto_tx_t *tx);   /* CRC, last block, 0x00 */

static inline uint32_t te_proto_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#ifdef __cplusplus
}
#endif

#endif /* TE_PROTO_H */
