/* tinyedge firmware: the device's inference loop.
 *
 * main() is `te_hal_init(); te_app_run();`.  te_app_run initialises the
 * runtime, prints the announcement line
 *   tinyedge ready board=<id> runtime=<aot|tflm> model=<16 hex> proto=<N> unit=<unit>
 * and then serves protocol frames (docs/protocol.md) forever.
 */
#ifndef TE_APP_H
#define TE_APP_H

#ifdef __cplusplus
extern "C" {
#endif

void te_app_run(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_APP_H */
