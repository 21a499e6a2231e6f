/* tinyedge firmware: te_runtime.h for the aot runtime, forwarding to the
 * generated model (model.h, default prefix te_model). */
#include "te_runtime.h"

#include "model.h"

te_status_t te_runtime_init(void)
{
    return te_model_init();
}

const te_model_info_t *te_runtime_info(void)
{
    return &te_model_info;
}

int8_t *te_runtime_input(uint32_t index)
{
    return te_model_input(index);
}

const int8_t *te_runtime_output(uint32_t index)
{
    return te_model_output(index);
}

te_status_t te_runtime_invoke(void)
{
    return te_model_invoke();
}
