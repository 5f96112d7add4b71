/*
 * error.c: error strings.
 */
#include <string.h>

#include "mapkv.h"

const char *mapkv_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case MAPKV_NOTFOUND:
		return "MAPKV_NOTFOUND: no such key, tree or position";
	case MAPKV_EXISTS:
		return "MAPKV_EXISTS: the key already exists";
	case MAPKV_FULL:
		return "MAPKV_FULL: the database reached its maximum size or "
		       "the disk is full";
	case MAPKV_CORRUPT:
		return "MAPKV_CORRUPT: the file is damaged or not a mapkv "
		       "database";
	case MAPKV_BAD_KEY:
		return "MAPKV_BAD_KEY: keys must be 1 to 1024 bytes long";
	case MAPKV_READONLY:
		return "MAPKV_READONLY: write attempted in a read-only "
		       "transaction or environment";
	case MAPKV_BAD_TXN:
		return "MAPKV_BAD_TXN: the transaction has ended or failed and "
		       "can only be aborted";
	case MAPKV_IO:
		return "MAPKV_IO: input/output error (see errno)";
	case MAPKV_NOMEM:
		return "MAPKV_NOMEM: out of memory";
	case MAPKV_VERSION_MISMATCH:
		return "MAPKV_VERSION_MISMATCH: the file has another format "
		       "version";
	case MAPKV_INVALID:
		return "MAPKV_INVALID: invalid argument";
	case MAPKV_BUSY:
		return "MAPKV_BUSY: another write transaction is active";
	case MAPKV_READERS_FULL:
		return "MAPKV_READERS_FULL: every reader slot is in use";
	case MAPKV_BAD_DBI:
		return "MAPKV_BAD_DBI: unknown, closed or dropped tree handle";
	case MAPKV_BAD_VALUE:
		return "MAPKV_BAD_VALUE: value too large";
	case MAPKV_PANIC:
		return "MAPKV_PANIC: a commit could not be made durable; close "
		       "and reopen the environment";
	case MAPKV_PAGE_SIZE:
		return "MAPKV_PAGE_SIZE: the file's page size cannot be used "
		       "on this system";
	case MAPKV_DBS_FULL:
		return "MAPKV_DBS_FULL: too many named trees are open";
	case MAPKV_INCOMPATIBLE:
		return "MAPKV_INCOMPATIBLE: operation incompatible with the "
		       "tree";
	case MAPKV_MAP_LOST:
		return "MAPKV_MAP_LOST: the map could not be mapped again at "
		       "its address while the file grew; close the environment";
	case MAPKV_FORKED:
		return "MAPKV_FORKED: the environment was opened by another "
		       "process (used after fork); open the database again in "
		       "this process";
	case MAPKV_LOCK_CONFLICT:
		return "MAPKV_LOCK_CONFLICT: the database is in use through "
		       "another lock file (a hard link or bind mount of it, a "
		       "replaced database file, or a removed or replaced lock "
		       "file); open it by the name the other processes use";
	case MAPKV_LOCK_LOST:
		return "MAPKV_LOCK_LOST: the lock file was truncated, removed "
		       "or replaced while in use; close the environment";
	default:
		if (rc > 0)
			return strerror(rc);
		return "unknown mapkv error code";
	}
}

const char *mapkv_version(void)
{
	return MAPKV_VERSION_STRING;
}
