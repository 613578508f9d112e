/*
 * jsonb_check.h
 *	  Validation of an untrusted jsonb body before anything reads it.
 */
#ifndef MLCACHE_JSONB_CHECK_H
#define MLCACHE_JSONB_CHECK_H

/* Containers nested deeper than this are refused (a miss, not a crash). */
#define MLCACHE_JSONB_MAX_DEPTH 1024

extern bool mlcache_jsonb_valid(const char *body, Size len);

#endif
