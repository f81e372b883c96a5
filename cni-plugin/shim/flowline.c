/*
 * The flowline CNI executable: a small native front for the resident plugin daemon.
 *
 * A container runtime execs a CNI plugin once per pod and per command; a Node.js plugin pays
 * Node's start-up (about 100 ms here) on every pod's critical path. This program keeps the exec
 * protocol exactly (CNI_* and the rest of the environment in, the config on stdin, the result or
 * error JSON on stdout, the exit code) and hands the invocation to `flowline-cni daemon` over a
 * unix socket, where the same plugin code runs warm.
 *
 * Socket: $FLOWLINE_CNI_SOCKET, else /run/flowline/cni.sock. When no daemon listens there
 * (no socket file, or a stale one), the invocation runs in-process instead: this program execs
 * `flowline-cni` found beside its own resolved path, before reading stdin, so nothing is lost.
 * FLOWLINE_CNI_NO_FALLBACK=1 makes that an error instead (code 11): the daemon's health probe
 * runs VERSION that way, a round trip through the daemon.
 *
 * `flowline lock TIMEOUT_MS` (never how a runtime calls a plugin: runtimes pass no arguments) is
 * the pod-lock helper of src/lock.ts: it takes flock(2) LOCK_EX on its fd 3, an open file
 * description it shares with the calling plugin process, and exits: 0 locked, 75 timed out, 1 an
 * error. The lock then belongs to that open file description, so the kernel releases it when the
 * plugin closes the file or dies, whatever pid namespace either side lives in.
 *
 * Wire format (src/daemon-protocol.ts is the other side; integers are u32 big-endian):
 *   request:  "FLC1" envCount { len bytes("KEY=VALUE") }*envCount stdinLen stdin
 *   response: "FLC1" exitCode stdoutLen stdout
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SOCKET "/run/flowline/cni.sock"
#define FALLBACK_NAME "flowline-cni"
#define MAGIC "FLC1"
/* Mirrors the daemon's limits; a bigger response is refused as corrupt. */
#define MAX_STDOUT (64u << 20)
#define CODE_IO_FAILURE 5
#define CODE_TRY_AGAIN_LATER 11
/* `flowline lock`: the lock was not free within the timeout (EX_TEMPFAIL). */
#define LOCK_EXIT_TIMEOUT 75
#define LOCK_FD 3

static char *stdin_buf;
static size_t stdin_len;

/* The config's cniVersion for our own error JSON (the plugin's rule: the config's, if usable). */
static void config_version(char *out, size_t cap) {
  snprintf(out, cap, "1.1.0");
  if (!stdin_buf) return;
  const char *key = memmem(stdin_buf, stdin_len, "\"cniVersion\"", 12);
  if (!key) return;
  const char *end = stdin_buf + stdin_len;
  const char *p = key + 12;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p++ != ':') return;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  if (p >= end || *p++ != '"') return;
  size_t n = 0;
  while (p + n < end && n + 1 < cap && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.')) n++;
  if (p + n >= end || p[n] != '"' || n == 0) return;
  memcpy(out, p, n);
  out[n] = '\0';
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or, negative, that of the ill-formed one there (its
 * maximal subpart, which Unicode replaces by one U+FFFD, as decoders do). p is NUL-terminated: a
 * sequence cut short meets the NUL, which is no continuation byte. */
static int utf8_len(const unsigned char *p) {
  const unsigned char c = p[0];
  unsigned lo = 0x80, hi = 0xbf;
  int n;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return -1;
  }
  if (p[1] < lo || p[1] > hi) return -1;
  for (int i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xbf) return -i;
  return n;
}

/* Prints s as a JSON string. details carry FLOWLINE_CNI_SOCKET and the install path, which may
 * hold any byte: '"', '\\' and control characters are escaped, and bytes that are not
 * well-formed UTF-8 are written as U+FFFD (JSON text is UTF-8, RFC 8259), so stdout stays
 * JSON that parses. */
static void print_json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int n = utf8_len(p);
    if (n < 0) {
      fputs("\\ufffd", stdout);
      p += -n;
    } else if (*p == '"' || *p == '\\') {
      printf("\\%c", *p++);
    } else if (*p < 0x20 || *p == 0x7f) {
      printf("\\u%04x", *p++);
    } else {
      fwrite(p, 1, (size_t)n, stdout);
      p += n;
    }
  }
  putchar('"');
}

/* Prints the spec's error JSON on stdout and exits non-zero. */
static _Noreturn void fail(int code, const char *msg, const char *details) {
  char version[32];
  config_version(version, sizeof version);
  printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":", version, code);
  print_json_string(msg);
  printf(",\"details\":");
  print_json_string(details);
  putchar('}');
  fflush(stdout);
  exit(1);
}

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* 0 when len bytes were read, -1 on error or early end of stream. */
static int read_exact(int fd, void *buf, size_t len) {
  char *p = buf;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_u32(int fd, uint32_t v) {
  uint32_t be = htonl(v);
  return write_all(fd, &be, sizeof be);
}

static void read_stdin(void) {
  size_t cap = 64 * 1024;
  stdin_buf = malloc(cap);
  if (!stdin_buf) fail(CODE_IO_FAILURE, "cannot read the network configuration: out of memory", "");
  for (;;) {
    if (stdin_len == cap) {
      cap *= 2;
      char *grown = realloc(stdin_buf, cap);
      if (!grown) fail(CODE_IO_FAILURE, "cannot read the network configuration: out of memory", "");
      stdin_buf = grown;
    }
    ssize_t n = read(STDIN_FILENO, stdin_buf + stdin_len, cap - stdin_len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      fail(CODE_IO_FAILURE, "cannot read the network configuration from stdin", strerror(errno));
    if (n == 0) break;
    stdin_len += (size_t)n;
  }
}

/* Runs the plugin in-process: `flowline-cni` beside this executable (symlinks resolved). */
static void exec_fallback(char **argv, const char *socket_path, int connect_errno) {
  const char *no_fallback = getenv("FLOWLINE_CNI_NO_FALLBACK");
  if (no_fallback && strcmp(no_fallback, "1") == 0) {
    read_stdin();
    fail(CODE_TRY_AGAIN_LATER,
         "the flowline CNI daemon is not answering and FLOWLINE_CNI_NO_FALLBACK=1 forbids "
         "running the plugin in-process; start the daemon (flowline-cni daemon)",
         strerror(connect_errno));
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash && (size_t)(slash - self) + 1 + sizeof FALLBACK_NAME <= sizeof self) {
      strcpy(slash + 1, FALLBACK_NAME);
      argv[0] = self;
      execv(self, argv);
    }
  }
  char details[PATH_MAX + 256];
  snprintf(details, sizeof details, "daemon socket %s: %s; %s: %s", socket_path,
           strerror(connect_errno), n > 0 ? self : "/proc/self/exe", strerror(errno));
  read_stdin();
  fail(CODE_TRY_AGAIN_LATER,
       "the flowline CNI daemon is not running and the in-process plugin flowline-cni cannot be "
       "run; start the daemon (flowline-cni daemon) or reinstall the plugin",
       details);
}

static volatile sig_atomic_t lock_timed_out;

static void on_lock_alarm(int sig) {
  (void)sig;
  lock_timed_out = 1;
}

/* `flowline lock TIMEOUT_MS`: flock(LOCK_EX) on fd 3, waiting at most TIMEOUT_MS. */
static int lock_main(int argc, char **argv) {
  char *end = NULL;
  errno = 0;
  long ms = argc == 3 ? strtol(argv[2], &end, 10) : -1;
  if (argc != 3 || errno != 0 || !end || *end != '\0' || ms < 0 || ms > 24L * 3600 * 1000) {
    fprintf(stderr, "usage: flowline lock TIMEOUT_MS (with the file to lock open on fd 3)\n");
    return 1;
  }
  /* A helper whose plugin died stops waiting: its lock would be released at once anyway. */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (flock(LOCK_FD, LOCK_EX | LOCK_NB) == 0) return 0;
  if (errno != EWOULDBLOCK) {
    fprintf(stderr, "flowline lock: flock on fd %d: %s\n", LOCK_FD, strerror(errno));
    return 1;
  }
  if (ms == 0) return LOCK_EXIT_TIMEOUT;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_lock_alarm; /* no SA_RESTART: the alarm interrupts flock with EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  /* The timer repeats, so an alarm that lands between the check and the call is not lost. */
  struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000},
                         .it_interval = {.tv_sec = 0, .tv_usec = 20 * 1000}};
  if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) it.it_value.tv_usec = 1;
  setitimer(ITIMER_REAL, &it, NULL);
  while (!lock_timed_out) {
    if (flock(LOCK_FD, LOCK_EX) == 0) return 0;
    if (errno != EINTR) {
      fprintf(stderr, "flowline lock: flock on fd %d: %s\n", LOCK_FD, strerror(errno));
      return 1;
    }
  }
  return LOCK_EXIT_TIMEOUT;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "lock") == 0) return lock_main(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  const char *socket_path = getenv("FLOWLINE_CNI_SOCKET");
  if (!socket_path || !*socket_path) socket_path = DEFAULT_SOCKET;

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof addr.sun_path) {
    read_stdin();
    fail(CODE_IO_FAILURE,
         "FLOWLINE_CNI_SOCKET is longer than a unix socket path may be (107 bytes)", socket_path);
  }
  strcpy(addr.sun_path, socket_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) exec_fallback(argv, socket_path, errno);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    exec_fallback(argv, socket_path, err);
  }

  read_stdin();
  size_t env_count = 0;
  for (char **e = environ; *e; e++) env_count++;
  int ok = write_all(fd, MAGIC, 4) == 0 && write_u32(fd, (uint32_t)env_count) == 0;
  for (char **e = environ; ok && *e; e++) {
    size_t len = strlen(*e);
    ok = write_u32(fd, (uint32_t)len) == 0 && write_all(fd, *e, len) == 0;
  }
  ok = ok && write_u32(fd, (uint32_t)stdin_len) == 0 && write_all(fd, stdin_buf, stdin_len) == 0;
  if (!ok)
    fail(
        CODE_TRY_AGAIN_LATER,
        "the flowline CNI daemon closed the connection while the request was sent; try again later",
        strerror(errno));
  shutdown(fd, SHUT_WR);

  char magic[4];
  uint32_t exit_code, out_len;
  if (read_exact(fd, magic, 4) < 0 || read_exact(fd, &exit_code, 4) < 0 ||
      read_exact(fd, &out_len, 4) < 0)
    fail(CODE_TRY_AGAIN_LATER,
         "the flowline CNI daemon closed the connection before answering (it may have restarted); "
         "the operation may be partly done: DEL it or try again later",
         socket_path);
  exit_code = ntohl(exit_code);
  out_len = ntohl(out_len);
  if (memcmp(magic, MAGIC, 4) != 0 || out_len > MAX_STDOUT || exit_code > 255)
    fail(CODE_IO_FAILURE,
         "the flowline CNI daemon answered in an unknown format; upgrade the plugin and the daemon "
         "together",
         socket_path);
  char *out = malloc(out_len ? out_len : 1);
  if (!out) fail(CODE_IO_FAILURE, "cannot read the daemon's answer: out of memory", "");
  if (read_exact(fd, out, out_len) < 0)
    fail(CODE_TRY_AGAIN_LATER,
         "the flowline CNI daemon closed the connection mid-answer; try again later", socket_path);
  close(fd);
  if (write_all(STDOUT_FILENO, out, out_len) < 0) return 1;
  return (int)exit_code;
}
