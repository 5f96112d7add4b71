/*
 * os.h: the operating-system layer as a swappable table (like SQLite's VFS).
 *
 * Every byte that reaches the database file, every barrier that makes bytes
 * durable, every size change and every mapping goes through an os_vfs. The
 * library holds a pointer to one (os_default_vfs(), from os_posix.c or
 * os_win32.c, by default); tests put their own underneath to record writes and
 * syncs, inject errors or simulate a power loss, without touching the layers
 * above. No file but os_*.c includes a platform header.
 *
 * Memory allocation goes through the table too, so a test can fail the Nth
 * allocation.
 *
 * Errors: every function returns 0 or a negative MAPKV_* code (MAPKV_IO
 * with errno set, MAPKV_FULL for ENOSPC/EFBIG, MAPKV_NOMEM); none prints.
 */
#ifndef MAPKV_OS_H
#define MAPKV_OS_H

#include <stddef.h>
#include <stdint.h>

typedef struct os_vfs os_vfs;
typedef struct os_file os_file; /* defined by each implementation */

/* One buffer of a gathered write. */
typedef struct os_iov {
	const void *base;
	size_t len;
} os_iov;

/* Flags for open. */
#define OS_OPEN_RDONLY 0x1 /* read-only access */
#define OS_OPEN_CREATE 0x2 /* create if missing */

/* What the library asks about an open file (info()). */
typedef struct os_fileinfo {
	uint64_t size;     /* bytes */
	uint64_t dev, ino; /* identity: two handles with equal pairs are of
			      one file, whatever the paths they were opened
			      by (device and inode; volume serial number and
			      file index on Windows) */
	uint64_t nlink;    /* names the file has; 0 once it was removed */
} os_fileinfo;

/* Lock kinds for lock(). */
#define OS_LOCK_WRITER 0 /* the single-writer lock */

struct os_vfs {
	const char *name;
	void *ctx; /* implementation's own state (tests hang theirs here) */

	/* Memory. */
	void *(*alloc)(os_vfs *vfs, size_t n);
	void *(*realloc)(os_vfs *vfs, void *p, size_t n);
	void (*free)(os_vfs *vfs, void *p);

	/* The smallest unit of mapping (page size, or allocation granularity
	 * on Windows). */
	size_t (*map_granularity)(os_vfs *vfs);

	/* The system's page size, the default page size of a new database,
	 * where it differs from map_granularity (Windows: 4 KiB pages, 64
	 * KiB granularity). NULL: map_granularity. */
	size_t (*page_size)(os_vfs *vfs);

	/* Open @path. *created is set to 1 when this call created the file.
	 * @mode is the permission for a created file. */
	int (*open)(os_vfs *vfs, const char *path, int flags, unsigned mode,
		    os_file **f, int *created);
	void (*close)(os_file *f);

	/* Current size of the file in bytes. */
	int (*size)(os_file *f, uint64_t *size);

	/* Size, identity and link count of the open file (fstat). May be
	 * NULL in a test table: the library then cannot tell two names of
	 * one file apart (env.c). */
	int (*info)(os_file *f, os_fileinfo *fi);

	/* The path @path names once every symbolic link in it is followed
	 * (realpath), in memory from alloc; the caller frees it. Where the
	 * platform cannot tell, a copy of @path. May be NULL in a test
	 * table: the path as given. */
	int (*real_path)(os_vfs *vfs, const char *path, char **out);

	/* Read exactly n bytes at off (short read past EOF: the missing tail
	 * is zero-filled and *got says how many bytes were in the file). */
	int (*read)(os_file *f, void *buf, size_t n, uint64_t off, size_t *got);

	/* Write the buffers back to back starting at off (pwritev). All or
	 * error. */
	int (*write)(os_file *f, const os_iov *iov, int cnt, uint64_t off);

	/* Set the file's size to exactly @size bytes (grow or shrink). */
	int (*resize)(os_file *f, uint64_t size);

	/* Barrier: make every write before it durable (fdatasync). */
	int (*sync)(os_file *f);

	/* write() then sync(), as one call where the platform can do it
	 * cheaper (Linux: pwritev2 with RWF_DSYNC). Used for the meta page
	 * of a commit. */
	int (*write_sync)(os_file *f, const os_iov *iov, int cnt, uint64_t off);

	/* Delete a file (a half-made copy). */
	int (*remove)(os_vfs *vfs, const char *path);

	/* Make the directory entry of a newly created file durable. */
	int (*sync_dir)(os_vfs *vfs, const char *path);

	/* Reserve @max bytes of address space (nothing committed) and map the
	 * first @len bytes of the file read-only, shared, at its start.
	 * *base receives the start of the reservation. */
	int (*map)(os_file *f, uint64_t max, uint64_t len, void **base);

	/* The file grew: map bytes [old_len, new_len) in place inside the
	 * reservation, so that base does not move. */
	int (*map_extend)(os_file *f, void *base, uint64_t old_len,
			  uint64_t new_len);

	/* Unmap and release the whole reservation. */
	void (*unmap)(os_file *f, void *base, uint64_t max);

	/* How map_extend grows this file's map (chosen by map, once): a
	 * static string for mapkv_env_info. *replaces is set to 1 when
	 * map_extend (and resize) replace the mapping at the same base, so
	 * that for a moment no other thread may touch the map: the caller
	 * then keeps them out with an os_rwlock (see env.c). May be NULL in
	 * a test table: "unknown", never replaced. */
	const char *(*map_growth)(os_file *f, int *replaces);

	/* Take/release an advisory exclusive lock on the file (the writer
	 * lock across processes). wait=0: return MAPKV_BUSY if held. */
	int (*lock)(os_file *f, int kind, int wait);
	int (*unlock)(os_file *f, int kind);

	/* Byte-range locks on the lock file: shared or exclusive, on one byte
	 * at @off, released by the kernel when the holder dies. Taking a lock
	 * on a byte this handle already locks converts it (exclusive to shared
	 * or back). wait=0: MAPKV_BUSY if another handle holds a conflicting
	 * lock. OFD locks where the system has them, so two handles in one
	 * process exclude each other too. */
	int (*lock_byte)(os_file *f, uint64_t off, int exclusive, int wait);
	int (*unlock_byte)(os_file *f, uint64_t off);

	/* Does another handle (of this process or another) hold a lock, of
	 * either kind, on any byte of [off, off + len) taken with
	 * lock_byte? *held gets 1 or 0. Locks of @f itself do not count.
	 * Offsets below 2^62. May be NULL in a test table. */
	int (*lock_test)(os_file *f, uint64_t off, uint64_t len, int *held);

	/* Map the first @len bytes of the file shared and writable (the lock
	 * file, never the database). */
	int (*map_rw)(os_file *f, size_t len, void **p);
	void (*unmap_rw)(os_file *f, void *p, size_t len);

	/* Is process @pid alive? */
	int (*pid_alive)(os_vfs *vfs, uint64_t pid);
	/* This process's id. Cheap (no system call on the common path): it
	 * is compared at every transaction's begin to notice an environment
	 * used in a child after fork(). */
	uint64_t (*pid)(os_vfs *vfs);

	/* Monotonic clock in nanoseconds. */
	uint64_t (*clock_ns)(os_vfs *vfs);
	/* Wall clock in nanoseconds since 1970 (comparable across
	 * processes). */
	uint64_t (*time_ns)(os_vfs *vfs);
};

/* The platform's default table (a static, shared, never freed). */
os_vfs *os_default_vfs(void);

/* A process-private mutex (not part of the swappable table: it never
 * touches the file). os_mutex_create returns 0 or MAPKV_NOMEM/MAPKV_IO. */
typedef struct os_mutex os_mutex;
int os_mutex_create(os_mutex **m);
void os_mutex_destroy(os_mutex *m);
void os_mutex_lock(os_mutex *m);
int os_mutex_trylock(os_mutex *m); /* 0 if taken, MAPKV_BUSY if held */
void os_mutex_unlock(os_mutex *m);

/* The map lock of a platform whose map must be replaced to grow (the
 * Windows remap path, os_win32.c): transactions hold it shared for their
 * lifetime, growth takes it exclusively. Shared holds are counted per
 * thread, so a thread may hold several and never waits for itself;
 * wrlock sets the caller's own holds aside while it waits and gives them
 * back in wrunlock (a thread that is growing the map is not reading it),
 * so a thread holding a read transaction can grow the map in a write
 * transaction without deadlock. suspend/resume set the caller's holds
 * aside around a wait for something else (the writer mutex). Not needed
 * on POSIX, where os_rwlock_create returns MAPKV_INVALID. create: 0,
 * MAPKV_NOMEM; rdlock/resume: 0 or MAPKV_NOMEM. */
typedef struct os_rwlock os_rwlock;
int os_rwlock_create(os_rwlock **l);
void os_rwlock_destroy(os_rwlock *l);
int os_rwlock_rdlock(os_rwlock *l);
void os_rwlock_rdunlock(os_rwlock *l);
void os_rwlock_wrlock(os_rwlock *l);
void os_rwlock_wrunlock(os_rwlock *l);
unsigned os_rwlock_suspend(os_rwlock *l);
int os_rwlock_resume(os_rwlock *l, unsigned n);

#endif /* MAPKV_OS_H */
