/*
 * LD_PRELOAD shim for wrk in benches/compare.sh's TLS scenarios (issue 14).
 *
 * wrk (4.x, OpenSSL) keeps one SSL object per connection slot and, on reconnecting, calls
 * SSL_shutdown + SSL_clear, which keeps the last session: with `Connection: close` every
 * connection after a slot's first is a resumed handshake. This shim wraps SSL_connect so that
 *
 *   PIBL_BENCH_TLS_RESUME=0   each handshake starts without a session: a full handshake every
 *                             time (tls-close);
 *   PIBL_BENCH_TLS_RESUME=1   the session is left alone: wrk resumes (tls-resume);
 *
 * and counts the handshakes that completed, full and resumed, writing "FULL RESUMED\n" to the
 * file named by PIBL_BENCH_TLS_STATS when wrk exits, so the script can show that what it
 * measured is what the scenario says.
 *
 * Built by compare.sh into its work dir: cc -shared -fPIC -O2 -o shim.so tls_session_shim.c -ldl
 * Declares the few OpenSSL functions it calls itself, so no OpenSSL headers are needed; they
 * resolve at run time against the libssl wrk loads.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_set_session(SSL *s, SSL_SESSION *session);
int SSL_session_reused(const SSL *s);
int SSL_in_before(const SSL *s);

static atomic_ulong full_handshakes;
static atomic_ulong resumed_handshakes;

int SSL_connect(SSL *s) {
  static int (*real_connect)(SSL *);
  static int resume = -1;
  if (real_connect == NULL) {
    real_connect = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_connect");
    if (real_connect == NULL) {
      fprintf(stderr, "tls_session_shim: SSL_connect not found\n");
      abort();
    }
  }
  if (resume < 0) {
    const char *v = getenv("PIBL_BENCH_TLS_RESUME");
    resume = !(v != NULL && v[0] == '0');
  }
  /* wrk calls SSL_connect again after each WANT_READ/WANT_WRITE: only the first call of a
   * handshake may drop the session. */
  if (!resume && SSL_in_before(s)) SSL_set_session(s, NULL);
  int r = real_connect(s);
  if (r == 1) {
    if (SSL_session_reused(s))
      atomic_fetch_add(&resumed_handshakes, 1);
    else
      atomic_fetch_add(&full_handshakes, 1);
  }
  return r;
}

__attribute__((destructor)) static void write_stats(void) {
  const char *path = getenv("PIBL_BENCH_TLS_STATS");
  if (path == NULL || path[0] == '\0') return;
  FILE *f = fopen(path, "w");
  if (f == NULL) return;
  fprintf(f, "%lu %lu\n", (unsigned long)atomic_load(&full_handshakes),
          (unsigned long)atomic_load(&resumed_handshakes));
  fclose(f);
}
