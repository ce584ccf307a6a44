/* Each header of the C API compiles as the only include of a C11 file
 * (header_alone_*.c, made from header_alone.c.in by meson.build) and
 * declares what it is for; this links them and calls each once. */
#include <stddef.h>
#include <stdio.h>

size_t header_alone_evstore(void);
size_t header_alone_evstore_subscription(void);
size_t header_alone_evstore_cache(void);
size_t header_alone_evstore_saga(void);
size_t header_alone_evstore_projection(void);
size_t header_alone_evstore_metrics(void);

int main(void) {
  size_t (*const checks[])(void) = {header_alone_evstore, header_alone_evstore_subscription,
                                     header_alone_evstore_cache, header_alone_evstore_saga,
                                     header_alone_evstore_projection, header_alone_evstore_metrics};
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    if (checks[i]() == 0) {
      fprintf(stderr, "headers_test: check %zu failed\n", i);
      return 1;
    }
  }
  printf("headers_test: every C header compiles alone\n");
  return 0;
}
