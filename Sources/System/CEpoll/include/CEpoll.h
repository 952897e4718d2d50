// Linux's readiness calls for ConnectionPool's reactor (Glibc's module map leaves these headers out).
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
