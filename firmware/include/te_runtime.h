/* tinyedge firmware: the interface every runtime implements (aot, tflm).
 *
 * The inference loop (te_app.c) talks to the model only through these calls,
 * so the same loop, protocol and cycle counter serve every runtime.
 *   - aot:  firmware/runtime/te_runtime_aot.c forwards to the generated
 *           te_model_* functions (model.c / model.h).
 *   - tflm: the project's runtime_tflm.cc wraps a MicroInterpreter.
 */
#ifndef TE_RUNTIME_H
#define TE_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "te_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TE_MAX_DIMS 6

typedef enum {
    TE_DTYPE_INT8 = 9,   /* values follow TFLite's TensorType enum */
    TE_DTYPE_INT16 = 7,
    TE_DTYPE_INT32 = 2,
    TE_DTYPE_INT64 = 4,
    TE_DTYPE_UINT8 = 3,
    TE_DTYPE_FLOAT32 = 0
} te_dtype_t;

typedef struct {
    uint8_t dtype;                 /* te_dtype_t */
    uint8_t rank;
    int32_t dims[TE_MAX_DIMS];
    uint32_t bytes;
    float scale;                   /* per-tensor quantization of the I/O tensor */
    int32_t zero_point;
} te_tensor_info_t;

typedef struct {
    const char *runtime;           /* "aot" or "tflm" */
    uint8_t model_sha256[32];      /* sha256 of the .tflite the firmware was made from */
    uint32_t arena_bytes;
    uint8_t num_inputs;
    uint8_t num_outputs;
    const te_tensor_info_t *inputs;
    const te_tensor_info_t *outputs;
} te_model_info_t;

te_status_t te_runtime_init(void);
const te_model_info_t *te_runtime_info(void);
int8_t *te_runtime_input(uint32_t index);
const int8_t *te_runtime_output(uint32_t index);
te_status_t te_runtime_invoke(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_RUNTIME_H */
