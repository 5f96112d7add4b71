/*
 * xfile.h: the cross-platform data set (see xfile.c).
 */
#ifndef MAPKV_XFILE_H
#define MAPKV_XFILE_H

#include <stddef.h>

#include "mapkv.h"

/* 0, or -1 with a message in @err. */
int xfile_write(const char *path, char *err, size_t errlen);
int xfile_verify(const char *path, char *err, size_t errlen);

#endif
