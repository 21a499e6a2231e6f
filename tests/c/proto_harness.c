/* Test harness for firmware/proto: built for the host (with ASan/UBSan by
 * tests/test_proto_c.py).
 *   proto_harness decode FILE...   feed each file byte by byte to the
 *       receiver; print "FILE <path>" then "F <type> <seq> <version> <len>
 *       <crc32 of body>" for each frame found.
 *   proto_harness encode TYPE SEQ BODYFILE   write the wire bytes of one
 *       frame (te_proto_tx) to stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "te_proto.h"

static te_proto_rx_t rx;
static te_proto_tx_t tx;
static uint8_t filebuf[1u << 20];

static size_t read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    n = fread(filebuf, 1, sizeof filebuf, f);
    fclose(f);
    return n;
}

static void out_write(const uint8_t *buf, size_t n)
{
    fwrite(buf, 1, n, stdout);
}

int main(int argc, char **argv)
{
    int i;
    if (argc >= 3 && strcmp(argv[1], "decode") == 0) {
        for (i = 2; i < argc; i++) {
            size_t n = read_file(argv[i]), k;
            te_frame_t f;
            te_proto_rx_init(&rx);
            printf("FILE %s\n", argv[i]);
            for (k = 0; k < n; k++) {
                if (te_proto_rx_feed(&rx, filebuf[k], &f)) {
                    printf("F %u %u %u %u %08lx\n", (unsigned)f.type, (unsigned)f.seq, (unsigned)f.version,
                           (unsigned)f.body_len, (unsigned long)te_crc32(0, f.body, f.body_len));
                }
            }
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "encode") == 0) {
        size_t n = read_file(argv[4]);
        te_proto_tx_begin(&tx, out_write, (uint8_t)strtoul(argv[2], NULL, 0), (uint16_t)strtoul(argv[3], NULL, 0));
        te_proto_tx_put(&tx, filebuf, n);
        te_proto_tx_end(&tx);
        return 0;
    }
    fprintf(stderr, "usage: proto_harness decode FILE... | encode TYPE SEQ BODYFILE\n");
    return 2;
}
