/*
 * fetch.h
 *	  Named definitions (fetch.c): what other parts share with them.
 */
#ifndef MLCACHE_FETCH_H
#define MLCACHE_FETCH_H

#include "lib/stringinfo.h"

extern uint32 mlcache_def_slot(const char *name, int len);
extern void mlcache_key_append_value(StringInfo buf, const char *s, int len);

#endif
