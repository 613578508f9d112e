/*
 * guc.h
 *	  All mlcache.* configuration parameters.
 */
#ifndef MLCACHE_GUC_H
#define MLCACHE_GUC_H

extern bool mlcache_enabled;
extern int	mlcache_l1_ttl;			/* seconds */
extern int	mlcache_l2_ttl;			/* seconds */
extern int	mlcache_l3_ttl;			/* seconds */
extern int	mlcache_l1_max_memory;	/* kB */
extern char *mlcache_redis_host;
extern int	mlcache_redis_port;
extern char *mlcache_redis_socket;
extern char *mlcache_redis_username;
extern char *mlcache_redis_password;
extern char *mlcache_redis_sentinels;
extern char *mlcache_redis_master_name;
extern char *mlcache_redis_sentinel_password;
extern int	mlcache_redis_database;
extern int	mlcache_redis_connect_timeout;	/* ms */
extern int	mlcache_redis_command_timeout;	/* ms */
extern int	mlcache_redis_retry_interval;	/* ms */
extern char *mlcache_key_prefix;
extern int	mlcache_max_value_size;	/* kB */
extern int	mlcache_generation_slots;
extern int	mlcache_refresh_delay;	/* ms */
extern int	mlcache_fill_wait_timeout;	/* ms */
extern int	mlcache_track_max;
extern int	mlcache_redis_spin_us;
extern int	mlcache_track_flush_interval;
extern int	mlcache_scan_interval;	/* ms */
extern int	mlcache_hygiene_delay;	/* ms */
extern int	mlcache_warm_task_timeout;	/* ms */
extern int	mlcache_warm_max_attempts;
extern int	mlcache_warm_sync_limit;	/* ms */
extern bool mlcache_standby_invalidation;

/* Bumped whenever a Redis connection setting changes. */
extern uint64 mlcache_redis_config_version;
/* Bumped whenever key_prefix changes. */
extern uint64 mlcache_prefix_config_version;

/* Longest Redis or sentinel address kept: an IPv6 text form, with room to spare. */
#define MLCACHE_HOSTLEN 64
/* Most sentinels mlcache.redis_sentinels may list. */
#define MLCACHE_MAX_SENTINELS 16

/* A Redis server's or a sentinel's numeric address. */
typedef struct MlcacheRedisAddr
{
	char		host[MLCACHE_HOSTLEN];
	int			port;
} MlcacheRedisAddr;

extern void mlcache_guc_init(void);
extern bool mlcache_numeric_host(const char *host);
extern int	mlcache_parse_sentinels(const char *list, MlcacheRedisAddr *out, int max,
									char *bad, int badlen);

#endif
