/**
 * @file mapkv.h
 * @brief mapkv: an embedded key-value store in one memory-mapped file.
 *
 * mapkv keeps a copy-on-write B+tree in a single file that is mapped into
 * the process. One write transaction at a time and any number of read
 * transactions run together; each read transaction sees the snapshot that
 * was committed when it began, without taking a lock.
 *
 * Conventions used by every function below:
 *  - A function that can fail returns 0 on success or a negative MAPKV_*
 *    error code; mapkv_strerror() turns a code into a sentence.
 *  - When the error is MAPKV_IO (or MAPKV_FULL caused by the disk), errno
 *    holds the operating system's error when the function returns.
 *  - The library never prints, never exits and never aborts on anything a
 *    file or a caller can cause.
 *  - Memory returned through a mapkv_val points into the database map (or a
 *    write transaction's private copy of a page): it is valid until the
 *    transaction ends or, in a write transaction, until the next change
 *    made by that transaction. Never write through it.
 *
 * Durability (the short form; doc/reliability.md has the long one): after
 * mapkv_txn_commit() returns 0, the transaction survives a crash of the
 * process and a loss of power. With MAPKV_NOSYNC a commit survives a crash
 * of the process but a loss of power may lose the last commits; the file
 * still opens at some earlier commit only if the operating system wrote its
 * pages in order, which it does not promise.
 */
#ifndef MAPKV_H
#define MAPKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(MAPKV_BUILDING_DLL)
#define MAPKV_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MAPKV_API __attribute__((visibility("default")))
#else
#define MAPKV_API
#endif

/** Library version, as a string and as numbers. */
#define MAPKV_VERSION_MAJOR 0
#define MAPKV_VERSION_MINOR 1
#define MAPKV_VERSION_PATCH 0
#define MAPKV_VERSION_STRING "0.1.0"

/** Longest key, in bytes. Keys are 1 to MAPKV_MAX_KEY_SIZE bytes long. */
#define MAPKV_MAX_KEY_SIZE 1024

/** Longest value, in bytes (4 GiB - 1). Values may be empty. */
#define MAPKV_MAX_VALUE_SIZE 0xffffffffu

/** @name Error codes. All are negative; 0 means success. */
/**@{*/
#define MAPKV_NOTFOUND (-30001) /**< no such key, tree or position */
#define MAPKV_EXISTS (-30002)   /**< key exists (MAPKV_NOOVERWRITE) */
#define MAPKV_FULL (-30003)     /**< map size or disk is full */
#define MAPKV_CORRUPT (-30004)  /**< file is damaged or not a mapkv file */
#define MAPKV_BAD_KEY (-30005)  /**< key empty or too long */
#define MAPKV_READONLY (-30006) /**< write attempted in a read-only txn/env */
#define MAPKV_BAD_TXN (-30007)  /**< txn ended, failed, or used wrongly */
#define MAPKV_IO (-30008)       /**< operating system I/O error, see errno */
#define MAPKV_NOMEM (-30009)    /**< out of memory */
#define MAPKV_VERSION_MISMATCH (-30010) /**< file of another format version */
#define MAPKV_INVALID (-30011)      /**< invalid argument (NULL, bad flag...) */
#define MAPKV_BUSY (-30012)         /**< writer lock held and MAPKV_TRY given */
#define MAPKV_READERS_FULL (-30013) /**< every reader slot is in use */
#define MAPKV_BAD_DBI (-30014)   /**< unknown, closed or dropped tree handle */
#define MAPKV_BAD_VALUE (-30015) /**< value too large */
#define MAPKV_PANIC (-30016)     /**< a sync failed: reopen the environment */
#define MAPKV_PAGE_SIZE                                                        \
	(-30017) /**< file uses a page size this build cannot map */
#define MAPKV_DBS_FULL (-30018) /**< too many named trees open */
#define MAPKV_INCOMPATIBLE                                                     \
	(-30019) /**< operation incompatible with the tree                     \
		  */
/** The map could not be mapped again at its address while it grew (the
 * Windows remap path, see mapkv_envinfo.map_growth): pointers into it are
 * no longer valid; abort every transaction and close the environment. */
#define MAPKV_MAP_LOST (-30020)
/** The environment was opened by another process: this one is a child
 * made by fork() after mapkv_open(). An environment, its transactions and
 * cursors belong to the process that opened it; the child must open the
 * database again (and may mapkv_close() or abort what it inherited, which
 * frees the child's memory and leaves the parent's locks and reader slots
 * alone). */
#define MAPKV_FORKED (-30021)
/** mapkv_open(): the database is in use through another lock file: a
 * hard link or a bind-mounted file of it under another name or folder, a
 * database file replaced (renamed over) while processes still use the
 * old one, or a lock file removed or replaced while in use. Two lock
 * tables would let writers reuse pages under readers, so the open is
 * refused; open the database by the name the others use, or wait until
 * they have closed it. Relative paths are fine, and so are symbolic links
 * on POSIX systems (the lock file is placed beside the file they lead to;
 * Windows does not follow them, so there a link is a second name). */
#define MAPKV_LOCK_CONFLICT (-30022)
/** The lock file this environment uses was truncated, removed or
 * replaced by another program while in use: readers are no longer
 * protected from the writer. Every new transaction is refused; close the
 * environment (and open it again). */
#define MAPKV_LOCK_LOST (-30023)
/**@}*/

/** Most reader slots an environment may ask for (mapkv_options.
 * max_readers): a lock file of 4 MiB. */
#define MAPKV_MAX_READERS 65536u
/** The largest mapkv_options.max_dbs, named trees open at once. A
 * transaction that uses a named tree keeps some 56 bytes for each of
 * max_dbs trees, so the limit bounds that memory too (3.5 MiB). */
#define MAPKV_MAX_DBS 65535u

/** @name Flags for mapkv_options.flags and mapkv_txn_begin(). */
/**@{*/
#define MAPKV_RDONLY 0x1u   /**< open read-only / begin a read transaction */
#define MAPKV_NOSYNC 0x2u   /**< env: do not sync on commit (see top) */
#define MAPKV_NOCREATE 0x4u /**< env: fail with MAPKV_IO/ENOENT if missing */
#define MAPKV_TRY 0x8u      /**< txn: return MAPKV_BUSY instead of waiting */
/**@}*/

/** @name Flags for mapkv_put() and mapkv_dbi_open(). */
/**@{*/
#define MAPKV_NOOVERWRITE 0x10u /**< put: fail with MAPKV_EXISTS if present */
#define MAPKV_CREATE 0x20u      /**< dbi_open: create the tree if missing */
/**@}*/

/** Cursor operations for mapkv_cursor_get(). */
enum mapkv_cursor_op {
	MAPKV_FIRST = 0, /**< first key of the tree */
	MAPKV_LAST = 1,  /**< last key of the tree */
	MAPKV_NEXT = 2,  /**< next key (first key on an unpositioned cursor) */
	MAPKV_PREV = 3,  /**< previous key (last key if unpositioned) */
	MAPKV_SEEK = 4,  /**< first key >= *key */
	MAPKV_SEEK_EXACT = 5, /**< exactly *key */
	MAPKV_GET_CURRENT = 6 /**< the key and value under the cursor */
};

typedef struct mapkv_env mapkv_env;
typedef struct mapkv_txn mapkv_txn;
typedef struct mapkv_cursor mapkv_cursor;
/** Handle of a tree; 0 is the main tree, always open. A named tree's
 * handle stands for its name in this environment, in every transaction,
 * from mapkv_dbi_open() until mapkv_dbi_close() or mapkv_close(). */
typedef uint32_t mapkv_dbi;

/** A byte string: a key or a value. */
typedef struct mapkv_val {
	const void *data;
	size_t size;
} mapkv_val;

/** Options for mapkv_open(). A zeroed struct means "all defaults". */
typedef struct mapkv_options {
	/** Largest size the file may reach, in bytes. 0: 64 GiB on 64-bit
	 * systems, 1 GiB on 32-bit ones (less if the system refuses to
	 * reserve that much address space, but never less than the file),
	 * or the file's size if it is larger.
	 * The range is reserved in address space at open (nothing is
	 * committed); MAPKV_FULL is returned by a write that would grow the
	 * file past it, and by mapkv_open for an existing file larger than a
	 * nonzero max_size. A nonzero max_size below two pages (twice the
	 * larger of the system's page size and map granularity: 8 KiB on
	 * Linux x86-64, 128 KiB on Windows), the smallest database, is
	 * refused with MAPKV_INVALID before any file is created. */
	uint64_t max_size;
	/** Permission bits of a newly created file; 0 means 0644. */
	unsigned mode;
	/** MAPKV_RDONLY, MAPKV_NOSYNC, MAPKV_NOCREATE. */
	unsigned flags;
	/** Reader slots (concurrent read transactions); 0 means 126, at
	 * most MAPKV_MAX_READERS (more: MAPKV_INVALID). The first process to
	 * open the database sizes the table; later ones use it as it is. */
	unsigned max_readers;
	/** Named trees that may be open at once (handles given out by
	 * mapkv_dbi_open and not closed, see mapkv_dbi_close); 0 means 128;
	 * at most MAPKV_MAX_DBS (more: MAPKV_INVALID, before any file is
	 * created). */
	unsigned max_dbs;
} mapkv_options;

/** Statistics of one tree, filled by mapkv_stat(). */
typedef struct mapkv_stat_info {
	uint32_t page_size;      /**< bytes per page */
	uint32_t depth;          /**< levels, 0 for an empty tree */
	uint64_t branch_pages;   /**< internal pages */
	uint64_t leaf_pages;     /**< leaf pages */
	uint64_t overflow_pages; /**< pages holding large values */
	uint64_t entries;        /**< key/value pairs */
} mapkv_stat_info;

/** Facts about an environment, filled by mapkv_env_info(). */
typedef struct mapkv_envinfo {
	uint32_t page_size;   /**< bytes per page */
	uint64_t max_size;    /**< largest size the file may reach */
	uint64_t file_size;   /**< current size of the file in bytes */
	uint64_t last_txnid;  /**< id of the last committed transaction */
	uint64_t pages_used;  /**< pages below the high-water mark */
	uint64_t pages_free;  /**< pages recorded as free (reusable later) */
	uint32_t max_readers; /**< reader slots */
	uint32_t num_readers; /**< slots held by live read transactions */
	uint64_t oldest_reader_txnid;  /**< oldest snapshot in use, 0 if none */
	uint64_t oldest_reader_pid;    /**< process holding it, 0 if none */
	uint64_t oldest_reader_age_ms; /**< how long it has held it */
	int shared_lock_file; /**< 1: readers are registered in the lock file
				   beside the database and so seen by every
				   process; 0: a private table (read-only
				   environment without a writable lock file) */
	/** How the map grows without moving its base address (a static
	 * string, chosen at open): "mmap MAP_FIXED into reserved range"
	 * (POSIX); on Windows "NtExtendSection" or "NtAllocateVirtualMemory"
	 * (the reserved view grows in place), "views appended at same base
	 * (MapViewOfFileEx)" (where ntdll refuses those, as Wine does: a new
	 * view is mapped after the last one), or "remap at same base
	 * (MapViewOfFileEx)" (a read-only environment there on a file that
	 * does not end on a 64 KiB boundary: a growth replaces the mapping at
	 * the same address and waits until the other threads of the process
	 * have ended their transactions; MAPKV_MAP_LOST if the address cannot
	 * be had again). README.md tells which is used where. */
	const char *map_growth;
} mapkv_envinfo;

/** One read transaction in any process, from mapkv_reader_list(). */
typedef struct mapkv_reader_info {
	uint64_t pid;    /**< process */
	uint64_t txnid;  /**< snapshot it reads */
	uint64_t age_ms; /**< how long it has held it */
} mapkv_reader_info;

/**
 * Open (and create when missing) the database file @p path.
 *
 * @param env  receives the environment; NULL on failure.
 * @param path the database file. A missing file is created (unless
 *             MAPKV_NOCREATE); a 0-byte file, or one whose creation never
 *             completed, opens as an empty database.
 * @param opts options, or NULL for defaults.
 *
 * Several processes (and several environments in one process) may open
 * the same file. They share a lock file beside the database, named after
 * the file the path leads to (symbolic links followed) and "-lock",
 * created with the same mode: it holds the table of read transactions, so
 * a writer in any process keeps the pages every reader still uses, and it
 * is rebuilt when the last process has gone. One write transaction runs
 * at a time across all of them, and a transaction begun after a commit
 * returned 0, in any process, sees that commit or a later one. Symbolic
 * links (POSIX) and relative paths lead to the same lock file; a second
 * name that would lead to another one (a hard link or a bind-mounted file
 * in another folder) is refused while the database is in use through the
 * first (MAPKV_LOCK_CONFLICT).
 *
 * An environment belongs to the process that opened it: after fork() the
 * child must not use what it inherited (transactions begin with
 * MAPKV_FORKED) and opens the database again; it may close the inherited
 * environment, which leaves the parent's locks alone.
 *
 * The lock file must be left alone while the database is in use: one
 * removed, replaced or truncated by another program is noticed at open,
 * when a write transaction begins, and by mapkv_reader_check() and
 * mapkv_env_info() (MAPKV_LOCK_LOST from then on), but on POSIX systems a
 * read transaction that begins after a truncation and before it was
 * noticed is killed by SIGBUS (a read transaction makes no system call;
 * doc/reliability.md). The same holds for the database file truncated by
 * another program (MAPKV_CORRUPT at a write transaction's begin).
 *
 * An environment opened MAPKV_RDONLY where the lock file cannot be opened
 * for writing (a read-only directory or file system) keeps its reader
 * table to itself: it works, but a writer in another process would not
 * see its readers and could reuse pages under them, so use it only when
 * nothing writes the file meanwhile (mapkv_env_info tells which case
 * applies).
 * @return 0; MAPKV_INVALID for a NULL argument, an unknown flag, more
 *         than MAPKV_MAX_READERS readers, more than MAPKV_MAX_DBS trees
 *         or a max_size below two pages;
 *         MAPKV_IO (errno set) if the file cannot be opened or mapped;
 *         MAPKV_CORRUPT if it is not a mapkv file or both meta pages are
 *         damaged, or it is shorter than its last commit;
 *         MAPKV_VERSION_MISMATCH for another format version (of the file,
 *         or of the lock file that processes of another release use);
 *         MAPKV_PAGE_SIZE for a page size this system cannot use;
 *         MAPKV_FULL if the file is larger than a nonzero max_size, or the
 *         disk is full while creating the file or its lock file;
 *         MAPKV_LOCK_CONFLICT (above); MAPKV_LOCK_LOST if the lock file
 *         that other processes use was truncated or overwritten under
 *         them (they must close first); MAPKV_NOMEM.
 */
MAPKV_API int mapkv_open(mapkv_env **env, const char *path,
			 const mapkv_options *opts);

/**
 * Close the environment, unmap and close the file. Every transaction and
 * cursor must have ended first; a write transaction still open is aborted.
 * NULL is ignored. In a child after fork() this frees the child's copy
 * only: the parent's locks and reader slots are left as they are.
 */
MAPKV_API void mapkv_close(mapkv_env *env);

/**
 * Flush the file to disk. Useful after commits made with MAPKV_NOSYNC.
 * A failed sync is final (what it should have made durable may be lost):
 * the environment then refuses writes and syncs with MAPKV_PANIC until it
 * is reopened.
 * @return 0, MAPKV_IO, MAPKV_FULL (ENOSPC/EDQUOT), MAPKV_PANIC,
 *         MAPKV_INVALID, MAPKV_FORKED.
 */
MAPKV_API int mapkv_sync(mapkv_env *env);

/** Fill @p info with facts about the environment. Counting free pages
 * reads the free-page tree; it works even when every reader slot is taken.
 * @return 0, MAPKV_INVALID, MAPKV_CORRUPT (damaged free-page tree: the
 *         other fields are filled); MAPKV_FORKED, MAPKV_LOCK_LOST and the
 *         other errors of beginning a read transaction. */
MAPKV_API int mapkv_env_info(mapkv_env *env, mapkv_envinfo *info);

/**
 * List the read transactions of every process using the database (from
 * the reader table in the lock file), oldest snapshot first.
 * @param out   room for @p max entries.
 * @param count receives how many readers there are (may exceed @p max).
 * @return 0, MAPKV_INVALID, MAPKV_FORKED, MAPKV_LOCK_LOST.
 */
MAPKV_API int mapkv_reader_list(mapkv_env *env, mapkv_reader_info *out,
				unsigned max, unsigned *count);

/**
 * Free the reader slots of processes that died holding a read
 * transaction, so their snapshots stop pinning pages. This also happens by
 * itself when slots run out and when a write transaction starts.
 * @param dead receives how many slots were freed (may be NULL).
 * @return 0, MAPKV_INVALID, MAPKV_FORKED, MAPKV_LOCK_LOST (the lock file
 *         was truncated, removed or replaced: see mapkv_open()).
 */
MAPKV_API int mapkv_reader_check(mapkv_env *env, unsigned *dead);

/**
 * Begin a transaction.
 *
 * @param flags 0 for a write transaction (waits while another one runs,
 *        unless MAPKV_TRY is given), MAPKV_RDONLY for a read transaction.
 *        A read transaction sees the last commit as of now for its whole
 *        life (in any process: never older than a commit that returned 0
 *        before this call). Use one transaction per thread at a time.
 * @return 0; MAPKV_READONLY for a write transaction in a read-only env;
 *         MAPKV_BUSY (MAPKV_TRY) if a writer is active; MAPKV_READERS_FULL;
 *         MAPKV_PANIC if an earlier sync failed; MAPKV_IO or MAPKV_CORRUPT
 *         when a writer cannot lock or read the meta pages, or the map
 *         cannot follow the file's growth; MAPKV_NOMEM; MAPKV_INVALID;
 *         MAPKV_MAP_LOST once a growth on the Windows remap path lost the
 *         map's address (see mapkv_envinfo.map_growth);
 *         MAPKV_FORKED in a child after fork() (open the database again
 *         there); MAPKV_LOCK_LOST once the lock file was found truncated,
 *         removed or replaced (see mapkv_open()); MAPKV_CORRUPT for a
 *         write transaction when the database file is shorter than its
 *         last commit (truncated by another program).
 *         On that remap path a read transaction also keeps a growth of the
 *         map by another thread waiting until it ends (README.md).
 */
MAPKV_API int mapkv_txn_begin(mapkv_env *env, unsigned flags, mapkv_txn **txn);

/**
 * Commit a transaction and free it, whatever the result. For a write
 * transaction, the data pages are written and synced, then the meta page
 * is written and synced (unless MAPKV_NOSYNC). On failure nothing of the
 * transaction is visible and the database stays as the last commit left
 * it. Cursors of the transaction must be closed first (they are invalid
 * afterwards).
 * @return 0; MAPKV_BAD_TXN for a transaction that already failed (it is
 *         aborted); MAPKV_IO; MAPKV_FULL; MAPKV_PANIC when the meta page
 *         could not be made durable (reopen the environment); MAPKV_NOMEM;
 *         MAPKV_MAP_LOST (Windows remap path, see mapkv_txn_begin);
 *         MAPKV_FORKED for a transaction inherited across fork() (it is
 *         freed, nothing is written).
 */
MAPKV_API int mapkv_txn_commit(mapkv_txn *txn);

/** Abandon a transaction and free it: nothing it did is kept. NULL is
 * ignored. */
MAPKV_API void mapkv_txn_abort(mapkv_txn *txn);

/** Id of the snapshot a transaction reads (for a write transaction, the
 * id it will commit as). 0 for NULL. */
MAPKV_API uint64_t mapkv_txn_id(const mapkv_txn *txn);

/**
 * Get a handle to a tree.
 *
 * A handle stands for the tree's name: every mapkv_dbi_open() of one name
 * returns the same handle until it is closed, and each transaction reaches
 * through it the tree of that name in its own snapshot. Where that tree
 * does not exist (deleted by mapkv_dbi_drop(), or not yet created in an
 * older snapshot) functions given the handle return MAPKV_BAD_DBI; if a
 * tree of that name is created again, the handle reaches the new tree.
 * An open handle takes one of max_dbs slots (mapkv_options) until
 * mapkv_dbi_close(). A lookup that fails (MAPKV_NOTFOUND or any error)
 * takes no slot, and the handle of a tree created by a write transaction
 * that then aborts, or whose commit fails, is closed by that end.
 *
 * @param name  NULL for the main tree (handle 0), otherwise a name of 1 to
 *              255 bytes (a C string).
 * @param flags MAPKV_CREATE to create a missing tree (write transactions
 *              only; the creation is undone if the transaction aborts).
 * @param dbi   receives the handle, valid in later transactions too.
 * @return 0; MAPKV_NOTFOUND if missing and not created; MAPKV_READONLY to
 *         create in a read transaction; MAPKV_DBS_FULL when max_dbs
 *         handles are open; MAPKV_NOMEM; MAPKV_CORRUPT; MAPKV_INVALID.
 */
MAPKV_API int mapkv_dbi_open(mapkv_txn *txn, const char *name, unsigned flags,
			     mapkv_dbi *dbi);

/**
 * Close a tree handle and free its slot, for programs that open many
 * trees over time (a handle is otherwise open until mapkv_close()). The
 * tree and its data are untouched.
 *
 * From this call on the handle is invalid everywhere, in transactions
 * already running too: every function given it, and every operation of a
 * cursor opened on it (except mapkv_cursor_close()), returns
 * MAPKV_BAD_DBI. The handle is shared by all who opened the name, so it
 * is closed for all of them. Changes a write transaction still running
 * made through it are kept: that transaction commits or aborts them as
 * usual. A later mapkv_dbi_open() of the name returns a new handle; a
 * closed handle never becomes valid again and never reaches another tree
 * (a handle carries its slot's generation; a slot whose generations are
 * used up, after 2^(32-b) closes where 2^b >= max_dbs + 1, about 16
 * million with the default max_dbs, is retired). The slot is reused
 * once no running transaction has used the handle. Safe to call from any
 * thread.
 * @return 0; MAPKV_BAD_DBI if @p dbi is not an open handle (unknown or
 *         already closed); MAPKV_INVALID for a NULL @p env or the main
 *         tree's handle 0, which cannot be closed; MAPKV_FORKED in a child
 *         after fork() (see mapkv_open).
 */
MAPKV_API int mapkv_dbi_close(mapkv_env *env, mapkv_dbi dbi);

/**
 * Empty a tree and, with @p del nonzero, delete it (not the main tree,
 * which can only be emptied). Its pages are freed for reuse.
 * @return 0, MAPKV_READONLY, MAPKV_BAD_DBI, MAPKV_INVALID; MAPKV_NOMEM,
 *         MAPKV_FULL or MAPKV_CORRUPT, after which the transaction is
 *         failed.
 */
MAPKV_API int mapkv_dbi_drop(mapkv_txn *txn, mapkv_dbi dbi, int del);

/**
 * Call @p fn once per named tree, in name order. Stops early, returning
 * what @p fn returned, if @p fn returns nonzero.
 * @return 0, MAPKV_CORRUPT, MAPKV_INVALID, or @p fn's nonzero result.
 */
MAPKV_API int mapkv_dbi_list(mapkv_txn *txn,
			     int (*fn)(void *ctx, const char *name), void *ctx);

/**
 * Look up @p key. On success @p val points at the value inside the map:
 * no copy is made (see the validity rule at the top).
 * @return 0, MAPKV_NOTFOUND, MAPKV_BAD_KEY, MAPKV_BAD_DBI, MAPKV_BAD_TXN,
 *         MAPKV_CORRUPT, MAPKV_INVALID; MAPKV_NOMEM on the first use of a
 *         named tree in a transaction.
 */
MAPKV_API int mapkv_get(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key,
			mapkv_val *val);

/**
 * Store @p key -> @p val, replacing an existing value unless
 * MAPKV_NOOVERWRITE is given. Values that do not fit in a leaf page go to
 * overflow pages.
 * @return 0; MAPKV_EXISTS; MAPKV_BAD_KEY; MAPKV_BAD_VALUE; MAPKV_READONLY;
 *         MAPKV_FULL (max_size reached: abort the transaction, nothing is
 *         lost); MAPKV_BAD_TXN; MAPKV_BAD_DBI; MAPKV_NOMEM; MAPKV_INVALID.
 * After any error other than MAPKV_EXISTS, MAPKV_BAD_KEY, MAPKV_BAD_VALUE
 * and MAPKV_INVALID the transaction is failed and can only be aborted.
 */
MAPKV_API int mapkv_put(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key,
			const mapkv_val *val, unsigned flags);

/**
 * Delete @p key.
 * @return 0, MAPKV_NOTFOUND, and the errors of mapkv_put().
 */
MAPKV_API int mapkv_del(mapkv_txn *txn, mapkv_dbi dbi, const mapkv_val *key);

/**
 * Open a cursor on a tree. The cursor belongs to the transaction: close it
 * before the transaction ends; using it afterwards returns MAPKV_BAD_TXN as
 * long as the cursor has not been closed.
 * @return 0, MAPKV_BAD_DBI, MAPKV_BAD_TXN, MAPKV_NOMEM, MAPKV_INVALID.
 */
MAPKV_API int mapkv_cursor_open(mapkv_txn *txn, mapkv_dbi dbi,
				mapkv_cursor **cur);

/**
 * Move the cursor and return the key and value it lands on.
 *
 * A cursor is unpositioned when opened; after its first successful move
 * it is positioned at a key K, the key of the pair its last successful
 * move returned. Only a successful FIRST, LAST, NEXT, PREV, SEEK or
 * SEEK_EXACT changes K; nothing else does, in particular no failed
 * operation (MAPKV_NOTFOUND or any other error): after one the cursor is
 * exactly where it was. In a write transaction the tree may
 * change under the cursor (mapkv_put, mapkv_del, mapkv_cursor_del through
 * this or another cursor, mapkv_dbi_drop): K stays the cursor's position
 * regardless. While K is in the tree the cursor is on K's pair; while it
 * is not (deleted, or the tree emptied) the cursor is in the gap where K
 * would be, and if K is stored again the cursor is on it again. So, with
 * "the tree" meaning the tree as it is at the call:
 *  - MAPKV_FIRST / MAPKV_LAST: the smallest / largest key.
 *  - MAPKV_NEXT: the smallest key > K (MAPKV_FIRST when unpositioned):
 *    it never skips a pair, whatever changed since the last move.
 *  - MAPKV_PREV: the largest key < K (MAPKV_LAST when unpositioned).
 *  - MAPKV_SEEK: the smallest key >= *key; MAPKV_SEEK_EXACT: *key itself.
 *  - MAPKV_GET_CURRENT: K's pair; MAPKV_NOTFOUND when unpositioned or in
 *    a gap (K is not in the tree).
 * Each returns MAPKV_NOTFOUND when there is no such key (the end of the
 * tree, an empty tree, a missing key), leaving the cursor unchanged. In a
 * read transaction the tree never changes, so this is plain iteration.
 * If the tree was deleted (mapkv_dbi_drop with del) or its handle closed,
 * the cursor's operations return MAPKV_BAD_DBI; if a tree of the same
 * name is created again in the transaction, the cursor continues from K
 * in the new tree.
 *
 * @param key input for MAPKV_SEEK and MAPKV_SEEK_EXACT; output (may be NULL
 *        otherwise) pointing into the map.
 * @param val output, may be NULL.
 * @param op  an enum mapkv_cursor_op.
 * @return 0; MAPKV_NOTFOUND as above; MAPKV_BAD_KEY for a SEEK key that is
 *         empty or too long; MAPKV_BAD_DBI; MAPKV_BAD_TXN after the
 *         transaction ended or failed; MAPKV_CORRUPT; MAPKV_INVALID (NULL
 *         cursor, unknown @p op, SEEK without a key).
 */
MAPKV_API int mapkv_cursor_get(mapkv_cursor *cur, mapkv_val *key,
			       mapkv_val *val, int op);

/**
 * Delete the pair under the cursor (the pair with the cursor's key K, see
 * mapkv_cursor_get). The cursor keeps K and so stands in the gap it
 * left: MAPKV_NEXT returns the pair that followed it, MAPKV_PREV the one
 * before it, MAPKV_GET_CURRENT MAPKV_NOTFOUND.
 * @return 0; MAPKV_NOTFOUND if the cursor is unpositioned or in a gap
 *         (nothing is deleted; the transaction goes on); MAPKV_READONLY in
 *         a read transaction; MAPKV_BAD_DBI; and the errors of mapkv_put().
 */
MAPKV_API int mapkv_cursor_del(mapkv_cursor *cur);

/** Close a cursor. NULL is ignored. */
MAPKV_API void mapkv_cursor_close(mapkv_cursor *cur);

/** Statistics of tree @p dbi as the transaction sees it.
 * @return 0, MAPKV_BAD_DBI, MAPKV_BAD_TXN, MAPKV_INVALID. */
MAPKV_API int mapkv_stat(mapkv_txn *txn, mapkv_dbi dbi, mapkv_stat_info *st);

/** Called by mapkv_check() for each problem found: @p pgno is the page
 * concerned (0 when none is), @p problem a sentence. Return nonzero to stop
 * the check early. */
typedef int (*mapkv_check_fn)(void *ctx, uint64_t pgno, const char *problem);

/**
 * Check the integrity of the database as @p txn (usually a read
 * transaction) sees it: both meta pages; every page of every tree (main,
 * named, catalog, free-page) reachable exactly once; no page both used and
 * free, none lost; page headers and node bounds; keys in order within and
 * across pages and inside their parent's separators; entry, page and depth
 * counts equal to the tree records; overflow runs intact.
 * @param fn       receives each problem (may be NULL).
 * @param problems receives the number of problems (may be NULL).
 * @return 0 when clean; MAPKV_CORRUPT when problems were found; MAPKV_NOMEM,
 *         MAPKV_IO, MAPKV_BAD_TXN, MAPKV_INVALID.
 */
MAPKV_API int mapkv_check(mapkv_txn *txn, mapkv_check_fn fn, void *ctx,
			  uint64_t *problems);

/** Called as a check advances: @p done of @p total pages examined (done
 * never decreases; the last call has done == total). */
typedef void (*mapkv_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/** mapkv_check() that also reports its progress to @p progress (may be
 * NULL), every 1,024 pages and at the end, with the same @p ctx. */
MAPKV_API int mapkv_check_progress(mapkv_txn *txn, mapkv_check_fn fn,
				   mapkv_progress_fn progress, void *ctx,
				   uint64_t *problems);

/** Flag for mapkv_copy(): rewrite live pages densely. */
#define MAPKV_COPY_COMPACT 0x1u

/**
 * Write a consistent copy of the database, as of the last commit, to a new
 * file @p path (which must not exist). Writers may run meanwhile: the copy
 * holds a read snapshot. With MAPKV_COPY_COMPACT the copy contains only live
 * pages, written densely (so it is no bigger than the data needs) and
 * without free-page records; otherwise it is a page-for-page image of the
 * snapshot. The copy is synced before the function returns.
 * @return 0; MAPKV_EXISTS if @p path exists; MAPKV_IO; MAPKV_FULL;
 *         MAPKV_NOMEM; MAPKV_READERS_FULL; MAPKV_INVALID; MAPKV_FORKED,
 *         MAPKV_LOCK_LOST (see mapkv_txn_begin).
 */
MAPKV_API int mapkv_copy(mapkv_env *env, const char *path, unsigned flags);

/** A sentence describing an error code (or "success" for 0, or the
 * operating system's text for a positive errno value). Never NULL. */
MAPKV_API const char *mapkv_strerror(int rc);

/** The library version as a string, e.g. "0.1.0". */
MAPKV_API const char *mapkv_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MAPKV_H */
