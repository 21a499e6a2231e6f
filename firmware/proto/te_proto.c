/* tinyedge firmware: the serial protocol, device side (see te_proto.h and
 * docs/protocol.md).  Portable C99, no heap. */
#include "te_proto.h"

#include <string.h>

/* CRC-32 with a 16-entry nibble table: 64 bytes of flash, two lookups a byte. */
static const uint32_t te_crc32_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t te_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ te_crc32_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ te_crc32_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

int32_t te_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t i = 0, len = 0;
    while (i < n) {
        uint8_t code = in[i++];
        size_t run;
        if (code == 0u) {
            return -1;
        }
        run = (size_t)code - 1u;
        if (run > n - i || len + run > cap) {
            return -1;
        }
        while (run--) {
            uint8_t b = in[i++];
            if (b == 0u) {
                return -1;
            }
            out[len++] = b;
        }
        if (code != 0xFFu && i < n) {
            if (len >= cap) {
                return -1;
            }
            out[len++] = 0u;
        }
    }
    return (int32_t)len;
}

/* Walk the COBS block without writing: the decoded length, and (when
 * want_crc) whether the CRC over all but the last 4 decoded bytes matches
 * them.  Returns the decoded length, or -1 when malformed, too long, or the
 * CRC does not match. */
static int32_t te_cobs_check(const uint8_t *in, uint32_t n, int32_t known_len)
{
    uint32_t i = 0, pos = 0;
    uint32_t crc = 0u;   /* te_crc32's running value */
    uint8_t tail[4] = {0u, 0u, 0u, 0u};
    uint32_t body = (known_len >= 4) ? (uint32_t)known_len - 4u : 0u;
    while (i < n) {
        uint8_t code = in[i++];
        uint32_t run, k;
        if (code == 0u) {
            return -1;
        }
        run = (uint32_t)code - 1u;
        if (run > n - i) {
            return -1;
        }
        for (k = 0; k <= run; k++) {
            uint8_t b;
            if (k < run) {
                b = in[i++];
                if (b == 0u) {
                    return -1;
                }
            } else if (code != 0xFFu && i < n) {
                b = 0u;
            } else {
                break;
            }
            if (pos >= TE_PROTO_MAX_FRAME) {
                return -1;
            }
            if (known_len >= 0) {
                if (pos < body) {
                    crc = te_crc32(crc, &b, 1u);
                } else {
                    tail[pos - body] = b;
                }
            }
            pos++;
        }
    }
    if (known_len >= 0) {
        if (te_proto_get_u32(tail) != crc) {
            return -1;
        }
    }
    return (int32_t)pos;
}

int te_proto_parse_chunk(uint8_t *chunk, uint32_t n, te_frame_t *f)
{
    uint32_t s;
    for (s = 0; s + 1u < n; s++) {
        int32_t len;
        uint8_t *p = chunk + s;
        if ((p[1] & 0xF0u) != TE_PROTO_MAGIC) {
            continue;
        }
        len = te_cobs_check(p, n - s, -1);
        if (len < (int32_t)(TE_PROTO_HEADER_BYTES + TE_PROTO_CRC_BYTES)) {
            continue;
        }
        if (te_cobs_check(p, n - s, len) != len) {
            continue;
        }
        /* Valid: decode in place (the output never overtakes the input). */
        if (te_cobs_decode(p, n - s, p, (size_t)len) != len) {
            continue;
        }
        f->version = (uint8_t)(p[0] & 0x0Fu);
        f->type = p[1];
        f->seq = (uint16_t)(p[2] | ((uint16_t)p[3] << 8));
        f->body = p + TE_PROTO_HEADER_BYTES;
        f->body_len = (uint32_t)len - TE_PROTO_HEADER_BYTES - TE_PROTO_CRC_BYTES;
        return 1;
    }
    return 0;
}

void te_proto_rx_init(te_proto_rx_t *rx)
{
    rx->n = 0;
    rx->overflow = 0;
    rx->dropped = 0;
}

int te_proto_rx_feed(te_proto_rx_t *rx, uint8_t byte, te_frame_t *f)
{
    if (byte != 0u) {
        if (rx->n < TE_PROTO_RAW_MAX) {
            rx->raw[rx->n++] = byte;
        } else {
            rx->overflow = 1;
        }
        return 0;
    }
    if (rx->n == 0u) {
        return 0;
    }
    {
        int ok = 0;
        if (!rx->overflow) {
            ok = te_proto_parse_chunk(rx->raw, rx->n, f);
        }
        if (!ok) {
            rx->dropped++;
        }
        rx->n = 0;
        rx->overflow = 0;
        return ok;
    }
}

/* ---- transmitter ---- */

static void te_tx_flush(te_proto_tx_t *tx)
{
    tx->block[0] = (uint8_t)(tx->n + 1u);
    tx->write(tx->block, (size_t)tx->n + 1u);
    tx->n = 0;
}

static void te_tx_byte(te_proto_tx_t *tx, uint8_t b)
{
    if (b == 0u) {
        te_tx_flush(tx);
        return;
    }
    tx->block[1u + tx->n++] = b;
    if (tx->n == 254u) {
        te_tx_flush(tx);   /* code 0xFF: 254 bytes, no zero follows */
    }
}

void te_proto_tx_put(te_proto_tx_t *tx, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    tx->crc = te_crc32(tx->crc, p, n);
    while (n--) {
        te_tx_byte(tx, *p++);
    }
}

void te_proto_tx_u8(te_proto_tx_t *tx, uint8_t v)
{
    te_proto_tx_put(tx, &v, 1u);
}

void te_proto_tx_u16(te_proto_tx_t *tx, uint16_t v)
{
    uint8_t b[2];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    te_proto_tx_put(tx, b, 2u);
}

void te_proto_tx_u32(te_proto_tx_t *tx, uint32_t v)
{
    uint8_t b[4];
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
    te_proto_tx_put(tx, b, 4u);
}

void te_proto_tx_u64(te_proto_tx_t *tx, uint64_t v)
{
    te_proto_tx_u32(tx, (uint32_t)v);
    te_proto_tx_u32(tx, (uint32_t)(v >> 32));
}

void te_proto_tx_begin(te_proto_tx_t *tx, te_write_fn write, uint8_t type, uint16_t seq)
{
    tx->write = write;
    tx->crc = 0u;
    tx->n = 0u;
    te_proto_tx_u8(tx, (uint8_t)(TE_PROTO_MAGIC | TE_PROTO_VERSION));
    te_proto_tx_u8(tx, type);
    te_proto_tx_u16(tx, seq);
}

void te_proto_tx_end(te_proto_tx_t *tx)
{
    uint32_t crc = tx->crc;
    uint8_t b[4];
    static const uint8_t delim = 0u;
    b[0] = (uint8_t)crc;
    b[1] = (uint8_t)(crc >> 8);
    b[2] = (uint8_t)(crc >> 16);
    b[3] = (uint8_t)(crc >> 24);
    {
        size_t i;
        for (i = 0; i < 4u; i++) {
            te_tx_byte(tx, b[i]);
        }
    }
    /* The final block: its code ends the frame (no zero follows it). */
    te_tx_flush(tx);
    tx->write(&delim, 1u);
}
