/*
 * secret.h
 *	  The per-cluster secret that keys the Redis envelope MAC.
 */
#ifndef MLCACHE_SECRET_H
#define MLCACHE_SECRET_H

/* Its file, relative to the data directory (the postmaster's working directory). */
#define MLCACHE_SECRET_FILE "mlcache.secret"

extern bool mlcache_secret_load(uint8 *secret);

#endif
