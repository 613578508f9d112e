/*
 * security.h
 *	  Privilege changes invalidate every cached value (G13).
 */
#ifndef MLCACHE_SECURITY_H
#define MLCACHE_SECURITY_H

extern void mlcache_security_init(void);
extern void mlcache_security_changed(void);

#endif
