/* read_ahead.h — large reads for client connections (see read_ahead.c). */
#ifndef HR_READ_AHEAD_H
#define HR_READ_AHEAD_H
#include <event2/bufferevent.h>

/* Once, on a client bufferevent evhttp is about to use. 0, or -1 (then
 * the connection reads as libevent does by itself). */
int hr_read_ahead_attach(struct bufferevent *bev);
#endif
