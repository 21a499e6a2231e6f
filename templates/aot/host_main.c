/* tinyedge: host driver for a generated aot model (used by tinyedge.aot.host
 * for sanitizer builds).  Reads input 0 (its byte size) from stdin, invokes,
 * writes output 0 to stdout; repeats until stdin ends.  Exit 0 on clean EOF. */
#include <stdio.h>
#include <stdint.h>

#include "model.h"

int main(void)
{
    const te_model_info_t *info = &te_model_info;
    const uint32_t in_bytes = info->inputs[0].bytes;
    const uint32_t out_bytes = info->outputs[0].bytes;
    if (te_model_init() != TE_OK) {
        return 3;
    }
    for (;;) {
        int8_t *in = te_model_input(0);
        size_t got = fread(in, 1, in_bytes, stdin);
        if (got == 0) {
            return 0;
        }
        if (got != in_bytes) {
            return 4;
        }
        if (te_model_invoke() != TE_OK) {
            return 5;
        }
        if (fwrite(te_model_output(0), 1, out_bytes, stdout) != out_bytes) {
            return 6;
        }
        fflush(stdout);
    }
}
