/* A server=1 virtio-user port whose vhost-user handshake broke, and the way back.
 *
 * DPDK 22.11's virtio-user remembers which queue pairs it has enabled on the backend and sends
 * SET_VRING_ENABLE only when that changes. When the peer drops the connection in the middle of
 * a handshake (OVS does when an allocation fails there), the "disable" of the reset that
 * follows cannot be sent, the memory of it stays "enabled", and the handshake on the next
 * connection never enables the queues: the switch then never polls the port nor sends to it,
 * while the port's link reads up. A further reconnection, once the device is started again,
 * sends the disable and then the enable, and the port works.
 *
 * So DPDK's log goes through a stream of ours, which also echoes it to stderr; a line saying a
 * virtio-user device (named by its socket path) failed to stop or start marks that path, and
 * the port's owner shuts down the connected socket of that path once the link is up again:
 * DPDK sees the peer leave, the switch reconnects, and that handshake is whole. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fl.h"

#define MAX_BROKEN 32
/* A vhost-user socket path fits a unix address. */
#define PATH_LEN sizeof(((struct sockaddr_un *)0)->sun_path)

static pthread_mutex_t broken_lock = PTHREAD_MUTEX_INITIALIZER;
static char broken[MAX_BROKEN][PATH_LEN];
static int n_broken;
static FILE *log_stream;

static void mark_broken(const char *path, size_t len) {
  if (len == 0 || len >= PATH_LEN) return;
  pthread_mutex_lock(&broken_lock);
  int i;
  for (i = 0; i < n_broken; i++)
    if (strlen(broken[i]) == len && memcmp(broken[i], path, len) == 0) break;
  if (i == n_broken && n_broken < MAX_BROKEN) {
    memcpy(broken[n_broken], path, len);
    broken[n_broken][len] = 0;
    n_broken++;
  }
  pthread_mutex_unlock(&broken_lock);
}

/* virtio-user names its device by socket path in parentheses: "(<path>) Failed to stop device". */
void fl_log_scan(const char *text, size_t len) {
  static const char *const verdicts[] = {") Failed to stop device", ") Failed to start device"};
  for (size_t v = 0; v < sizeof(verdicts) / sizeof(verdicts[0]); v++) {
    size_t vlen = strlen(verdicts[v]);
    for (const char *p = text; (p = memmem(p, len - (size_t)(p - text), verdicts[v], vlen));
         p += vlen) {
      const char *open = p;
      while (open > text && open[-1] != '(' && open[-1] != '\n') open--;
      if (open > text && open[-1] == '(') mark_broken(open, (size_t)(p - open));
    }
  }
}

static ssize_t log_write(void *cookie, const char *buf, size_t size) {
  (void)cookie;
  fl_log_scan(buf, size);
  size_t done = 0;
  while (done < size) {
    ssize_t k = write(STDERR_FILENO, buf + done, size - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    done += (size_t)k;
  }
  return (ssize_t)size;
}

FILE *fl_log_stream(void) {
  if (!log_stream) {
    cookie_io_functions_t io = {.read = NULL, .write = log_write, .seek = NULL, .close = NULL};
    log_stream = fopencookie(NULL, "w", io);
    if (log_stream) setvbuf(log_stream, NULL, _IOLBF, 0);
  }
  return log_stream;
}

int fl_vhost_take_broken(const char *path) {
  int found = 0;
  pthread_mutex_lock(&broken_lock);
  for (int i = 0; i < n_broken; i++) {
    if (strcmp(broken[i], path) != 0) continue;
    memmove(broken[i], broken[i + 1], (size_t)(n_broken - i - 1) * sizeof(broken[0]));
    n_broken--;
    found = 1;
    break;
  }
  pthread_mutex_unlock(&broken_lock);
  return found;
}

/* A connected (not listening) unix socket whose own address is path: the server side of a
 * vhost-user connection accepted on path. Found by the descriptor itself, not by
 * /proc/net/unix: the kernel creates that socket in the network namespace of the peer that
 * connected (OVS's, not the pod's), so the pod's /proc/net/unix does not list it. */
static int is_accepted_on(int fd, const char *path) {
  struct stat sb;
  if (fstat(fd, &sb) < 0 || !S_ISSOCK(sb.st_mode)) return 0;
  struct sockaddr_un addr;
  socklen_t len = sizeof(addr);
  memset(&addr, 0, sizeof(addr));
  if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX) return 0;
  if (len <= offsetof(struct sockaddr_un, sun_path) || addr.sun_path[0] == 0) return 0;
  if (strncmp(addr.sun_path, path, sizeof(addr.sun_path)) != 0) return 0;
  int listening = 0;
  socklen_t optlen = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) < 0 || listening) return 0;
  return 1;
}

int fl_vhost_kick(const char *path, char *err) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return fl_fail(err, -errno, "cannot list /proc/self/fd");
  int kicked = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    long fd = strtol(e->d_name, &end, 10);
    if (*end || e->d_name[0] == 0 || fd < 0 || fd == dirfd(d)) continue;
    /* shutdown, not close: the descriptor stays DPDK's, which closes it on the disconnect. */
    if (is_accepted_on((int)fd, path) && shutdown((int)fd, SHUT_RDWR) == 0) kicked++;
  }
  closedir(d);
  return kicked;
}
