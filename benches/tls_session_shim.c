/*
 * LD_PRELOAD shim for wrk in benches/compare.sh's TLS scenarios (issue 14).
 *
 * wrk (4.x, OpenSSL) keeps one SSL object per connection slot and, on reconnecting, calls
 * SSL_shutdown + SSL_clear, which keeps the last session: with `Connection: close` every
 * connection after a slot's first is a resumed handshake. This shim wraps SSL_connect and
 * SSL_shutdown so that
 *
 *   PIBL_BENCH_TLS_RESUME=0   each handshake starts without a session: a full handshake every
 *                             time (tls-close);
 *   PIBL_BENCH_TLS_RESUME=1   wrk keeps resuming, and a slot's first connection, which has no
 *                             session of its own yet, resumes the latest session any connection
 *                             ended with (tls-resume). With PIBL_BENCH_TLS_SESSION_FILE set, that
 *                             session is written there when wrk exits and read back when the next
 *                             wrk starts, so the timed run's first connections resume the warm-up's
 *                             session instead of making a full handshake each;
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
int SSL_set_session(SSL *s, SSL_SESSION *session);
SSL_SESSION *SSL_get_session(const SSL *s);
int SSL_session_reused(const SSL *s);
int SSL_in_before(const SSL *s);
int SSL_SESSION_is_resumable(const SSL_SESSION *s);
void SSL_SESSION_free(SSL_SESSION *s);
SSL_SESSION *SSL_SESSION_dup(const SSL_SESSION *src);
int i2d_SSL_SESSION(SSL_SESSION *in, unsigned char **pp);
SSL_SESSION *d2i_SSL_SESSION(SSL_SESSION **a, const unsigned char **pp, long length);
void CRYPTO_free(void *ptr, const char *file, int line);

static atomic_ulong full_handshakes;
static atomic_ulong resumed_handshakes;

/* Resume mode's latest resumable session: a private copy, never set on a connection itself.
 * Connections get copies too, because an OpenSSL client marks the session it resumed
 * not-resumable when the server's new ticket arrives: a session object shared by the
 * connection slots would be spent by the first one to finish. */
static pthread_mutex_t latest_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_SESSION *latest;

static void *real(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    fprintf(stderr, "tls_session_shim: %s not found\n", name);
    abort();
  }
  return f;
}

static int resume_mode(void) {
  static int resume = -1;
  if (resume < 0) {
    const char *v = getenv("PIBL_BENCH_TLS_RESUME");
    resume = !(v != NULL && v[0] == '0');
  }
  return resume;
}

/* Takes over one reference to sess. */
static void keep_latest(SSL_SESSION *sess) {
  pthread_mutex_lock(&latest_lock);
  if (latest != NULL) SSL_SESSION_free(latest);
  latest = sess;
  pthread_mutex_unlock(&latest_lock);
}

static void load_saved_session(void) {
  const char *path = getenv("PIBL_BENCH_TLS_SESSION_FILE");
  if (path == NULL || path[0] == '\0') return;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return;
  unsigned char der[16384];
  size_t n = fread(der, 1, sizeof der, f);
  fclose(f);
  const unsigned char *p = der;
  SSL_SESSION *sess = n > 0 ? d2i_SSL_SESSION(NULL, &p, (long)n) : NULL;
  if (sess != NULL) keep_latest(sess);
}

int SSL_connect(SSL *s) {
  static int (*real_connect)(SSL *);
  static pthread_once_t loaded = PTHREAD_ONCE_INIT;
  if (real_connect == NULL) real_connect = (int (*)(SSL *))real("SSL_connect");
  /* wrk calls SSL_connect again after each WANT_READ/WANT_WRITE: only the first call of a
   * handshake may change the session. */
  if (SSL_in_before(s)) {
    if (!resume_mode()) {
      SSL_set_session(s, NULL);
    } else if (SSL_get_session(s) == NULL) {
      pthread_once(&loaded, load_saved_session);
      pthread_mutex_lock(&latest_lock);
      SSL_SESSION *copy = latest != NULL ? SSL_SESSION_dup(latest) : NULL;
      pthread_mutex_unlock(&latest_lock);
      if (copy != NULL) {
        SSL_set_session(s, copy); /* takes its own reference */
        SSL_SESSION_free(copy);
      }
    }
  }
  int r = real_connect(s);
  if (r == 1) {
    if (SSL_session_reused(s))
      atomic_fetch_add(&resumed_handshakes, 1);
    else
      atomic_fetch_add(&full_handshakes, 1);
  }
  return r;
}

/* wrk shuts a connection down after reading its response, so TLS 1.3 tickets have arrived:
 * the connection's session is now resumable. */
int SSL_shutdown(SSL *s) {
  static int (*real_shutdown)(SSL *);
  if (real_shutdown == NULL) real_shutdown = (int (*)(SSL *))real("SSL_shutdown");
  if (resume_mode()) {
    SSL_SESSION *sess = SSL_get_session(s);
    if (sess != NULL && SSL_SESSION_is_resumable(sess)) {
      SSL_SESSION *copy = SSL_SESSION_dup(sess);
      if (copy != NULL) keep_latest(copy);
    }
  }
  return real_shutdown(s);
}

__attribute__((destructor)) static void at_exit(void) {
  const char *path = getenv("PIBL_BENCH_TLS_STATS");
  FILE *f;
  if (path != NULL && path[0] != '\0' && (f = fopen(path, "w")) != NULL) {
    fprintf(f, "%lu %lu\n", (unsigned long)atomic_load(&full_handshakes),
            (unsigned long)atomic_load(&resumed_handshakes));
    fclose(f);
  }
  path = getenv("PIBL_BENCH_TLS_SESSION_FILE");
  if (resume_mode() && latest != NULL && path != NULL && path[0] != '\0') {
    unsigned char *der = NULL;
    int n = i2d_SSL_SESSION(latest, &der);
    if (n > 0 && (f = fopen(path, "wb")) != NULL) {
      fwrite(der, 1, (size_t)n, f);
      fclose(f);
    }
    if (der != NULL) CRYPTO_free(der, __FILE__, __LINE__);
  }
}
