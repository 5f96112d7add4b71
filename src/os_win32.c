/*
 * os_win32.c: the os_vfs table for Windows 10+ (x64), the only file of the
 * library that includes <windows.h>.
 *
 * Same file format, same API, same rules as os_posix.c: the database file
 * is mapped read-only and every changed page is written with WriteFile at
 * an offset (so a full disk is an error from WriteFile, never a fault in a
 * store through the map); sync is FlushViewOfFile + FlushFileBuffers, and
 * a failed sync is final (never retried).
 *
 * Growing the map without moving its base
 * ---------------------------------------
 * Win32 alone cannot map a file into a reservation larger than the file,
 * nor extend a view in place. Four paths, chosen once per file by map()
 * (at open) and reported by map_growth() (mapkv_env_info().map_growth,
 * the shell's .stat):
 *
 *  "NtExtendSection" (real Windows, not verified here: see README.md): the
 *     section is created with NtCreateSection(SECTION_EXTEND_SIZE |
 *     SECTION_MAP_READ | SECTION_MAP_WRITE, PAGE_READWRITE, SEC_RESERVE,
 *     the file), and ONE view over the whole maximum size is mapped with
 *     NtMapViewOfSection (MEM_RESERVE, commit size = the file's size).
 *     Growth is NtExtendSection to the new, exact size: the committed part
 *     of the view grows, the base never moves, nothing is replaced.
 *  "NtAllocateVirtualMemory" (an ntdll without NtExtendSection that takes
 *     reserved views): as above, growth commits the new pages of the
 *     reserved range with NtAllocateVirtualMemory (page-granular; resize()
 *     has already set the file's size).
 *  "views appended at same base (MapViewOfFileEx)" (Wine 8, which has no
 *     NtExtendSection, refuses a MEM_RESERVE view larger than the section
 *     with STATUS_INVALID_VIEW_SIZE, and refuses placeholder reservations,
 *     VirtualAlloc2 with MEM_RESERVE_PLACEHOLDER, with
 *     ERROR_INVALID_PARAMETER): the map is a row of plain views, each of a
 *     mapping of the file as it was when that view was added, end to end
 *     from the base; the rest of the range is held by a
 *     VirtualAlloc(MEM_RESERVE) of its own. Growth releases that
 *     reservation, maps the new bytes with MapViewOfFileEx at the end of
 *     the last view (same base, so nothing moves and nothing mapped is
 *     touched: readers in other threads go on), and reserves the rest
 *     again. Views of one file are coherent however many mappings they
 *     come from. A view must start on the 64 KiB allocation granularity,
 *     so map_granularity() is 64 KiB (the pager grows the file by whole
 *     granules; the page size of new files stays 4 KiB, page_size()), and
 *     map() extends a writable file that does not end on a granule (one
 *     written on Linux) to the next one: its size only, no byte written.
 *  "remap at same base (MapViewOfFileEx)": where the last view cannot be
 *     followed (a file opened read-only that does not end on a granule):
 *     growth unmaps every view and maps the grown file again at the same
 *     base. For that moment the map does not exist, so map_growth() says
 *     *replaces = 1 and env.c keeps every other thread out with an
 *     os_rwlock that transactions hold for their lifetime (the cost: such
 *     a growth, rare, waits for the transactions of other threads to
 *     end). If the base cannot be had again, the old length is mapped
 *     there again; if even that fails, MAPKV_MAP_LOST: the base never
 *     moves silently.
 * In the Win32 paths only free address space is released for a moment:
 * another thread of the process could take it in between, and the growth
 * then fails (MAPKV_IO, errno ENOMEM/EINVAL) with the map as it was.
 * MAPKV_WIN_GROWTH=append or =remap in the environment forces a Win32
 * path (to test it on real Windows; the tests force remap under Wine).
 *
 * What Windows forbids and how it is handled:
 *  - A new or 0-byte file cannot back a section. map() then only reserves
 *    the range; the section (or first view) is created at the first
 *    growth. No stray byte is ever written to make a file mappable.
 *  - A section never shrinks, and a mapped file cannot be truncated
 *    (ERROR_USER_MAPPED_FILE). resize() to a smaller size (compaction and
 *    copies) unmaps, sets the end of file and maps again at the same base:
 *    that invalidates every pointer into the map of that file while it
 *    runs (only the library's own copy does it, on a file no one reads).
 *  - Byte-range locks are mandatory on Windows (they block ReadFile and
 *    WriteFile of other handles on those bytes), so the writer lock, the
 *    lock file's lock bytes and the database's identity bytes (lock.h)
 *    sit at LOCK_BASE (2^62) + offset, far beyond any data. LockFileEx
 *    locks belong to the handle, which is what the OFD locks of
 *    os_posix.c give: two environments of one process exclude each
 *    other too. Windows cannot convert a lock in place, so a
 *    conversion is an unlock followed by a lock (env.c only converts while
 *    it holds the init byte, which makes that safe).
 *  - Files are opened with FILE_SHARE_READ | FILE_SHARE_WRITE |
 *    FILE_SHARE_DELETE so other processes can open the database and its
 *    lock file.
 *  - The directory entry of a new file cannot be synced on its own
 *    (NTFS journals it); sync_dir() is a no-op.
 *  - ReadFile/WriteFile and mapped views of a local file share the same
 *    cache pages, so pages written are seen through the map (as LMDB on
 *    Windows relies on). Not promised for files on network shares.
 *
 * Errors: a failed Windows call is mapped to an errno value (errno is set,
 * GetLastError() keeps the original), returned as MAPKV_IO, or MAPKV_FULL
 * for a full disk. An NTSTATUS is first turned into a Windows error with
 * RtlNtStatusToDosError.
 */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00 /* Windows 10 */
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include "os.h"

#include "mapkv.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Where the byte locks live: far beyond any data (see the top). */
#define LOCK_BASE ((uint64_t)1 << 62)
#define LOCK_WRITER_OFF (LOCK_BASE + ((uint64_t)1 << 40))

/* The largest single ReadFile/WriteFile request. */
#define OS_IO_CHUNK ((DWORD)1 << 30)

/* How a file's map grows (see the top). */
enum { GROW_NONE = 0, GROW_NTEXTEND, GROW_NTALLOC, GROW_APPEND, GROW_REMAP };

static const char *const growth_name[] = {
	"none",
	"NtExtendSection",
	"NtAllocateVirtualMemory",
	"views appended at same base (MapViewOfFileEx)",
	"remap at same base (MapViewOfFileEx)",
};

#define NLOCKS 4 /* byte locks one handle may hold at once */

struct os_file {
	os_vfs *vfs;
	HANDLE h;
	int rdonly;
	int writer_held;
	struct {
		uint64_t off;
		int mode; /* 0 free, 1 shared, 2 exclusive */
	} locks[NLOCKS];

	/* The database map. */
	int growth;        /* GROW_* */
	uint8_t *map_base; /* start of the range, NULL if none */
	uint64_t map_max;  /* bytes of address space (granule multiple) */
	uint64_t view_len; /* bytes mapped (committed) */
	HANDLE section;    /* NT paths: the section */
	int nt_view;       /* NT paths: the one view is mapped */
	uint8_t **views;   /* Win32 paths: the views, in address order */
	unsigned nviews, vcap;
	int bare;      /* nothing mapped yet: the range is one reservation */
	uint8_t *tail; /* Win32 paths: reservation after the views */
	int lost;      /* the base could not be had again */

	/* The lock file's read-write map (map_rw). */
	HANDLE rw_section;
};

struct os_mutex {
	SRWLOCK l;
};

/* ---------------------------------------------------------------- ntdll */

typedef LONG mk_ntstatus;
#define MK_NT_OK(s) ((mk_ntstatus)(s) >= 0)
#define MK_STATUS_INVALID_VIEW_SIZE ((mk_ntstatus)0xC000001FL)
#define MK_VIEW_UNMAP 2 /* SECTION_INHERIT ViewUnmap */

typedef mk_ntstatus(NTAPI *nt_create_section_fn)(PHANDLE, ACCESS_MASK, PVOID,
						 PLARGE_INTEGER, ULONG, ULONG,
						 HANDLE);
typedef mk_ntstatus(NTAPI *nt_map_view_fn)(HANDLE, HANDLE, PVOID *, ULONG_PTR,
					   SIZE_T, PLARGE_INTEGER, PSIZE_T,
					   DWORD, ULONG, ULONG);
typedef mk_ntstatus(NTAPI *nt_unmap_view_fn)(HANDLE, PVOID);
typedef mk_ntstatus(NTAPI *nt_extend_section_fn)(HANDLE, PLARGE_INTEGER);
typedef mk_ntstatus(NTAPI *nt_allocate_vm_fn)(HANDLE, PVOID *, ULONG_PTR,
					      PSIZE_T, ULONG, ULONG);
typedef ULONG(NTAPI *rtl_status_to_dos_fn)(mk_ntstatus);

static struct {
	nt_create_section_fn create_section;
	nt_map_view_fn map_view;
	nt_unmap_view_fn unmap_view;
	nt_extend_section_fn extend_section;
	nt_allocate_vm_fn allocate_vm;
	rtl_status_to_dos_fn status_to_dos;
	int force; /* GROW_* from MAPKV_WIN_GROWTH, or GROW_NONE */
} nt;

static INIT_ONCE nt_once = INIT_ONCE_STATIC_INIT;

/* Cast through a generic function pointer: GetProcAddress returns FARPROC. */
#define NT_LOAD(mod, name) ((void (*)(void))GetProcAddress((mod), (name)))

static BOOL CALLBACK nt_load(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
	HMODULE m = GetModuleHandleW(L"ntdll.dll");
	char buf[16];
	DWORD n;

	(void)once;
	(void)param;
	(void)ctx;
	if (m != NULL) {
		nt.create_section =
			(nt_create_section_fn)NT_LOAD(m, "NtCreateSection");
		nt.map_view = (nt_map_view_fn)NT_LOAD(m, "NtMapViewOfSection");
		nt.unmap_view =
			(nt_unmap_view_fn)NT_LOAD(m, "NtUnmapViewOfSection");
		nt.extend_section =
			(nt_extend_section_fn)NT_LOAD(m, "NtExtendSection");
		nt.allocate_vm = (nt_allocate_vm_fn)NT_LOAD(
			m, "NtAllocateVirtualMemory");
		nt.status_to_dos = (rtl_status_to_dos_fn)NT_LOAD(
			m, "RtlNtStatusToDosError");
	}
	n = GetEnvironmentVariableA("MAPKV_WIN_GROWTH", buf, sizeof(buf));
	if (n > 0 && n < sizeof(buf) && strcmp(buf, "remap") == 0)
		nt.force = GROW_REMAP;
	else if (n > 0 && n < sizeof(buf) && strcmp(buf, "append") == 0)
		nt.force = GROW_APPEND;
	return TRUE;
}

static void nt_init(void)
{
	InitOnceExecuteOnce(&nt_once, nt_load, NULL, NULL);
}

/* ---------------------------------------------------------------- errors */

static int errno_of(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH:
	case ERROR_BAD_NET_NAME:
		return ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_WRITE_PROTECT:
	case ERROR_NETWORK_ACCESS_DENIED:
		return EACCES;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
	case ERROR_BUSY:
	case ERROR_USER_MAPPED_FILE:
		return EBUSY;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return EEXIST;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return ENOSPC;
	case ERROR_FILE_TOO_LARGE:
		return EFBIG;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
	case ERROR_COMMITMENT_LIMIT:
	case ERROR_INVALID_ADDRESS:
		return ENOMEM;
	case ERROR_INVALID_PARAMETER:
	case ERROR_INVALID_NAME:
	case ERROR_BAD_PATHNAME:
		return EINVAL;
	case ERROR_FILENAME_EXCED_RANGE:
		return ENAMETOOLONG;
	case ERROR_DIRECTORY:
		return ENOTDIR;
	case ERROR_NOT_SUPPORTED:
	case ERROR_INVALID_FUNCTION:
		return ENOSYS;
	default:
		return EIO;
	}
}

/* The last Windows error as a MAPKV code, errno set. */
static int win_error(void)
{
	DWORD e = GetLastError();

	errno = errno_of(e);
	if (errno == ENOSPC || errno == EFBIG)
		return MAPKV_FULL;
	return MAPKV_IO;
}

static int nt_error(mk_ntstatus s)
{
	DWORD e = nt.status_to_dos ? nt.status_to_dos(s) : ERROR_GEN_FAILURE;

	SetLastError(e);
	return win_error();
}

/* ---------------------------------------------------------------- memory */

static void *w_alloc(os_vfs *vfs, size_t n)
{
	(void)vfs;
	return malloc(n);
}

static void *w_realloc(os_vfs *vfs, void *p, size_t n)
{
	(void)vfs;
	return realloc(p, n);
}

static void w_free(os_vfs *vfs, void *p)
{
	(void)vfs;
	free(p);
}

static size_t page_size(void)
{
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	return si.dwPageSize ? si.dwPageSize : 4096;
}

static uint64_t alloc_granularity(void)
{
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	return si.dwAllocationGranularity ? si.dwAllocationGranularity : 65536;
}

/* The allocation granularity (64 KiB): views start on it, so the map and
 * the file grow by it (pager.c rounds to it). */
static size_t w_map_granularity(os_vfs *vfs)
{
	(void)vfs;
	return (size_t)alloc_granularity();
}

/* The page size of new files: 4 KiB, as on Linux, not the 64 KiB
 * granularity (os.h). */
static size_t w_page_size(os_vfs *vfs)
{
	(void)vfs;
	return page_size();
}

static uint64_t round_up(uint64_t n, uint64_t g)
{
	if (n > UINT64_MAX - (g - 1))
		return 0;
	return (n + g - 1) / g * g;
}

/* ------------------------------------------------------------ open/close */

/* UTF-8 path to a malloc'd wide string; NULL with errno set. */
static wchar_t *wide_path(const char *path)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1,
				    NULL, 0);
	wchar_t *w;

	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	w = malloc((size_t)n * sizeof(wchar_t));
	if (w == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w,
				n) != n) {
		free(w);
		errno = EINVAL;
		return NULL;
	}
	return w;
}

static int w_open(os_vfs *vfs, const char *path, int flags, unsigned mode,
		  os_file **fp, int *created)
{
	DWORD access, share, attrs;
	HANDLE h = INVALID_HANDLE_VALUE;
	int made = 0;
	wchar_t *wp;
	os_file *f;

	(void)mode; /* no Unix permissions: the folder's ACL applies */
	if (fp != NULL)
		*fp = NULL;
	if (created != NULL)
		*created = 0;
	if (vfs == NULL || path == NULL || fp == NULL ||
	    (flags & ~(OS_OPEN_RDONLY | OS_OPEN_CREATE)) != 0)
		return MAPKV_INVALID;
	f = vfs->alloc(vfs, sizeof(*f));
	if (f == NULL)
		return MAPKV_NOMEM;
	memset(f, 0, sizeof(*f));
	wp = wide_path(path);
	if (wp == NULL) {
		int e = errno;

		vfs->free(vfs, f);
		errno = e;
		return e == ENOMEM ? MAPKV_NOMEM : MAPKV_IO;
	}
	/* A directory opens with nothing but an access error; say EISDIR. */
	attrs = GetFileAttributesW(wp);
	if (attrs != INVALID_FILE_ATTRIBUTES &&
	    (attrs & FILE_ATTRIBUTE_DIRECTORY)) {
		free(wp);
		vfs->free(vfs, f);
		errno = EISDIR;
		return MAPKV_IO;
	}
	access = GENERIC_READ | ((flags & OS_OPEN_RDONLY) ? 0 : GENERIC_WRITE);
	share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
	if (flags & OS_OPEN_CREATE) {
		/* Race-free "did I create it?", as O_EXCL on POSIX. */
		for (int tries = 0; tries < 100; tries++) {
			h = CreateFileW(wp, access, share, NULL, CREATE_NEW,
					FILE_ATTRIBUTE_NORMAL, NULL);
			if (h != INVALID_HANDLE_VALUE) {
				made = 1;
				break;
			}
			if (GetLastError() != ERROR_FILE_EXISTS)
				break;
			h = CreateFileW(wp, access, share, NULL, OPEN_EXISTING,
					FILE_ATTRIBUTE_NORMAL, NULL);
			if (h != INVALID_HANDLE_VALUE ||
			    GetLastError() != ERROR_FILE_NOT_FOUND)
				break;
		}
	} else {
		h = CreateFileW(wp, access, share, NULL, OPEN_EXISTING,
				FILE_ATTRIBUTE_NORMAL, NULL);
	}
	if (h == INVALID_HANDLE_VALUE) {
		int rc = win_error();
		int e = errno;

		free(wp);
		vfs->free(vfs, f);
		errno = e;
		return rc == MAPKV_FULL ? MAPKV_FULL : MAPKV_IO;
	}
	free(wp);
	f->vfs = vfs;
	f->h = h;
	f->rdonly = (flags & OS_OPEN_RDONLY) != 0;
	*fp = f;
	if (created != NULL)
		*created = made;
	return 0;
}

static void w_close(os_file *f)
{
	int e = errno;

	if (f == NULL)
		return;
	/* Closing the handle releases its byte locks. */
	CloseHandle(f->h);
	f->vfs->free(f->vfs, f);
	errno = e;
}

/* ------------------------------------------------------------ size, read */

static int file_size(os_file *f, uint64_t *size)
{
	LARGE_INTEGER li;

	if (!GetFileSizeEx(f->h, &li))
		return win_error();
	*size = (uint64_t)li.QuadPart;
	return 0;
}

static int w_size(os_file *f, uint64_t *size)
{
	if (f == NULL || size == NULL)
		return MAPKV_INVALID;
	return file_size(f, size);
}

/* One call for size, links and a pending delete (a file removed while
 * open stays until its last handle closes, but its name is gone: nlink 0
 * as on POSIX), then the identity. */
static int w_info(os_file *f, os_fileinfo *fi)
{
	FILE_STANDARD_INFO st;
	BY_HANDLE_FILE_INFORMATION bh;

	if (f == NULL || fi == NULL)
		return MAPKV_INVALID;
	if (!GetFileInformationByHandleEx(f->h, FileStandardInfo, &st,
					  sizeof(st)))
		return win_error();
	if (!GetFileInformationByHandle(f->h, &bh))
		return win_error();
	fi->size = (uint64_t)st.EndOfFile.QuadPart;
	fi->nlink = st.DeletePending ? 0 : (uint64_t)st.NumberOfLinks;
	fi->dev = bh.dwVolumeSerialNumber;
	fi->ino = (uint64_t)bh.nFileIndexHigh << 32 | bh.nFileIndexLow;
	return 0;
}

/* Symbolic links are not followed here: a second name of an open
 * database is refused by the identity lock instead (env.c). */
static int w_real_path(os_vfs *vfs, const char *path, char **out)
{
	size_t n;

	if (vfs == NULL || path == NULL || out == NULL)
		return MAPKV_INVALID;
	n = strlen(path) + 1;
	if ((*out = vfs->alloc(vfs, n)) == NULL)
		return MAPKV_NOMEM;
	memcpy(*out, path, n);
	return 0;
}

static int w_read(os_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
	unsigned char *p = buf;
	size_t done = 0;

	if (got != NULL)
		*got = 0;
	if (f == NULL || (buf == NULL && n > 0))
		return MAPKV_INVALID;
	if (off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off)
		return MAPKV_INVALID;
	while (done < n) {
		size_t want = n - done;
		OVERLAPPED ov;
		DWORD r = 0;
		uint64_t at = off + done;

		if (want > OS_IO_CHUNK)
			want = OS_IO_CHUNK;
		memset(&ov, 0, sizeof(ov));
		ov.Offset = (DWORD)at;
		ov.OffsetHigh = (DWORD)(at >> 32);
		if (!ReadFile(f->h, p + done, (DWORD)want, &r, &ov)) {
			if (GetLastError() == ERROR_HANDLE_EOF)
				break;
			return win_error();
		}
		if (r == 0)
			break;
		done += r;
	}
	if (done < n)
		memset(p + done, 0, n - done);
	if (got != NULL)
		*got = done;
	return 0;
}

/* ----------------------------------------------------------------- write */

static int w_write(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	uint64_t total = 0;

	if (f == NULL || cnt < 0 || (iov == NULL && cnt > 0))
		return MAPKV_INVALID;
	for (int k = 0; k < cnt; k++) {
		if (iov[k].base == NULL && iov[k].len > 0)
			return MAPKV_INVALID;
		if (iov[k].len > (uint64_t)INT64_MAX - total) {
			errno = EFBIG;
			return MAPKV_FULL;
		}
		total += iov[k].len;
	}
	if (off > (uint64_t)INT64_MAX || total > (uint64_t)INT64_MAX - off) {
		errno = EFBIG;
		return MAPKV_FULL;
	}
	for (int k = 0; k < cnt; k++) {
		const unsigned char *p = iov[k].base;
		size_t left = iov[k].len;

		while (left > 0) {
			DWORD want =
				left > OS_IO_CHUNK ? OS_IO_CHUNK : (DWORD)left;
			OVERLAPPED ov;
			DWORD w = 0;

			memset(&ov, 0, sizeof(ov));
			ov.Offset = (DWORD)off;
			ov.OffsetHigh = (DWORD)(off >> 32);
			if (!WriteFile(f->h, p, want, &w, &ov))
				return win_error();
			if (w == 0) {
				errno = EIO;
				return MAPKV_IO;
			}
			p += w;
			left -= w;
			off += w;
		}
	}
	return 0;
}

static int w_sync(os_file *f)
{
	if (f == NULL)
		return MAPKV_INVALID;
	/* Nothing is stored through the database map, but flush its views
	 * anyway (cheap when clean), then the file's buffers and the
	 * drive's cache. A failure is final (see os_posix.c). */
	if (f->nt_view && f->view_len > 0 &&
	    !FlushViewOfFile(f->map_base, (SIZE_T)f->view_len))
		return win_error();
	for (unsigned i = 0; i < f->nviews; i++)
		if (!FlushViewOfFile(f->views[i], 0))
			return win_error();
	if (!FlushFileBuffers(f->h))
		return win_error();
	return 0;
}

static int w_write_sync(os_file *f, const os_iov *iov, int cnt, uint64_t off)
{
	int rc = w_write(f, iov, cnt, off);

	return rc ? rc : w_sync(f);
}

static int w_remove(os_vfs *vfs, const char *path)
{
	wchar_t *wp;
	int rc = 0;

	(void)vfs;
	if (path == NULL)
		return MAPKV_INVALID;
	if ((wp = wide_path(path)) == NULL)
		return MAPKV_IO;
	if (!DeleteFileW(wp))
		rc = win_error();
	free(wp);
	return rc;
}

static int w_sync_dir(os_vfs *vfs, const char *path)
{
	(void)vfs;
	/* NTFS journals directory entries; there is no handle to flush. */
	return path == NULL ? MAPKV_INVALID : 0;
}

/* ------------------------------------------------------------------- map */

static int set_eof(os_file *f, uint64_t size);

/* Reserve @len bytes of address space at @at (NULL: anywhere). */
static uint8_t *reserve(void *at, uint64_t len)
{
	return VirtualAlloc(at, (SIZE_T)len, MEM_RESERVE, PAGE_NOACCESS);
}

/* NT paths: a section over the first @size bytes of the file (never more
 * than the file holds: that would extend it), and one view of map_max
 * bytes at @at with the first @size committed. */
static mk_ntstatus nt_map_at(os_file *f, void *at, uint64_t size)
{
	LARGE_INTEGER max, zero;
	HANDLE sec = NULL;
	PVOID base = at;
	SIZE_T vsize = (SIZE_T)f->map_max;
	mk_ntstatus s;

	max.QuadPart = (LONGLONG)size;
	zero.QuadPart = 0;
	s = nt.create_section(&sec,
			      SECTION_EXTEND_SIZE | SECTION_MAP_READ |
				      (f->rdonly ? 0 : SECTION_MAP_WRITE),
			      NULL, &max,
			      f->rdonly ? PAGE_READONLY : PAGE_READWRITE,
			      SEC_RESERVE, f->h);
	if (!MK_NT_OK(s))
		return s;
	s = nt.map_view(sec, GetCurrentProcess(), &base, 0, (SIZE_T)size, &zero,
			&vsize, MK_VIEW_UNMAP, MEM_RESERVE, PAGE_READONLY);
	if (!MK_NT_OK(s)) {
		CloseHandle(sec);
		return s;
	}
	if (base != at) {
		nt.unmap_view(GetCurrentProcess(), base);
		CloseHandle(sec);
		return (mk_ntstatus)0xC0000018L; /* CONFLICTING_ADDRESSES */
	}
	f->section = sec;
	f->nt_view = 1;
	f->view_len = size;
	return 0;
}

/* Win32 paths: map bytes [off, off + len) of the file (all within it) at
 * @at, from a mapping object of the whole file that is closed again (the
 * view keeps it alive). Room for the view in f->views is made first. */
static int win_view_at(os_file *f, uint8_t *at, uint64_t off, uint64_t len)
{
	HANDLE m;
	void *p;

	if (f->nviews == f->vcap) {
		unsigned cap = f->vcap ? 2 * f->vcap : 16;
		uint8_t **v = realloc(f->views, cap * sizeof(*v));

		if (v == NULL)
			return MAPKV_NOMEM;
		f->views = v;
		f->vcap = cap;
	}
	m = CreateFileMappingW(f->h, NULL, PAGE_READONLY, 0, 0, NULL);
	if (m == NULL)
		return win_error();
	p = MapViewOfFileEx(m, FILE_MAP_READ, (DWORD)(off >> 32), (DWORD)off,
			    (SIZE_T)len, at);
	if (p == NULL) {
		int rc = win_error(), e = errno;

		CloseHandle(m);
		errno = e;
		return rc;
	}
	CloseHandle(m);
	assert(p == at);
	f->views[f->nviews++] = p;
	return 0;
}

/* Keep the range after the views, for later growth. Not fatal if it
 * fails: the next growth simply tries the address. */
static void tail_reserve(os_file *f)
{
	uint64_t vend = round_up(f->view_len, alloc_granularity());

	f->tail = NULL;
	if (vend < f->map_max) {
		f->tail = reserve(f->map_base + vend, f->map_max - vend);
		if (f->tail != NULL && f->tail != f->map_base + vend) {
			VirtualFree(f->tail, 0, MEM_RELEASE);
			f->tail = NULL;
		}
	}
}

static void tail_release(os_file *f)
{
	if (f->tail != NULL)
		VirtualFree(f->tail, 0, MEM_RELEASE);
	f->tail = NULL;
}

/* Take down whatever is mapped or reserved in the range; map_base is
 * kept, to build there again. */
static void teardown(os_file *f)
{
	tail_release(f);
	if (f->nt_view)
		nt.unmap_view(GetCurrentProcess(), f->map_base);
	for (unsigned i = 0; i < f->nviews; i++)
		UnmapViewOfFile(f->views[i]);
	if (f->bare && f->map_base != NULL)
		VirtualFree(f->map_base, 0, MEM_RELEASE);
	if (f->section != NULL)
		CloseHandle(f->section);
	f->section = NULL;
	f->nt_view = 0;
	f->nviews = 0;
	f->bare = 0;
	f->view_len = 0;
}

/* The Win32 path for this file (see the top): append views, unless the
 * file is read-only here and does not end on the allocation granularity,
 * where the last view must be replaced to grow. */
static int win32_path(os_file *f, uint64_t fsize)
{
	if (nt.force == GROW_APPEND || nt.force == GROW_REMAP)
		return nt.force;
	return f->rdonly && fsize % alloc_granularity() ? GROW_REMAP
							: GROW_APPEND;
}

/* Map the first @len bytes (<= the file's size) at f->map_base, after a
 * teardown. A system that refuses the NT view (STATUS_INVALID_VIEW_SIZE:
 * Wine) is switched to appended views for good. */
static int build_at(os_file *f, uint64_t len)
{
	uint8_t *at = f->map_base;
	int rc;

	if (len == 0) {
		/* Nothing can back a section yet: keep the range only. */
		uint8_t *p = reserve(at, f->map_max);

		if (p == NULL)
			return win_error();
		if (p != at) {
			VirtualFree(p, 0, MEM_RELEASE);
			errno = ENOMEM;
			return MAPKV_IO;
		}
		f->bare = 1;
		return 0;
	}
	if (f->growth == GROW_NTEXTEND || f->growth == GROW_NTALLOC) {
		mk_ntstatus s = nt_map_at(f, at, len);

		if (MK_NT_OK(s))
			return 0;
		if (s != MK_STATUS_INVALID_VIEW_SIZE)
			return nt_error(s);
		f->growth = GROW_APPEND;
	}
	if ((rc = win_view_at(f, at, 0, len)))
		return rc;
	f->view_len = len;
	tail_reserve(f);
	return 0;
}

static int w_map(os_file *f, uint64_t max, uint64_t len, void **basep)
{
	uint64_t g = alloc_granularity(), rmax, fsize = 0;
	int rc = MAPKV_IO;

	if (basep != NULL)
		*basep = NULL;
	if (f == NULL || basep == NULL || max == 0 || f->map_base != NULL)
		return MAPKV_INVALID;
	if (len > max)
		return MAPKV_FULL;
	rmax = round_up(max, g);
	if (rmax == 0 || rmax > (uint64_t)SIZE_MAX) {
		errno = ENOMEM;
		return MAPKV_IO;
	}
	if ((rc = file_size(f, &fsize)))
		return rc;
	nt_init();
	/* A file written elsewhere may end inside an allocation granule;
	 * views are appended on granule boundaries, so a writable file is
	 * extended to the next one (the size only: no byte is written; the
	 * format allows a file longer than its pages). */
	if (!f->rdonly && fsize % g != 0 && round_up(fsize, g) <= rmax) {
		if ((rc = set_eof(f, round_up(fsize, g))))
			return rc;
		fsize = round_up(fsize, g);
	}
	/* Map the whole file: the caller's @len is rounded to pages. */
	len = fsize < rmax ? fsize : rmax;
	if (nt.force == GROW_NONE && nt.create_section && nt.map_view &&
	    nt.unmap_view && (nt.extend_section || nt.allocate_vm))
		f->growth = nt.extend_section ? GROW_NTEXTEND : GROW_NTALLOC;
	else
		f->growth = win32_path(f, fsize);
	f->map_max = rmax;

	/* Find a free range, then build there. A view can only be mapped into
	 * free address space, so the range is released first; another thread
	 * may take it in between, so try a few times. */
	for (int tries = 0; tries < 8; tries++) {
		uint8_t *p = reserve(NULL, rmax);

		if (p == NULL)
			return win_error(); /* no address space */
		f->map_base = p;
		if (len == 0) {
			f->bare =
				1; /* the section waits for the first growth */
			*basep = p;
			return 0;
		}
		VirtualFree(p, 0, MEM_RELEASE);
		rc = build_at(f, len);
		if (rc == 0) {
			/* Wine refused the NT view: choose as above. */
			if (f->growth == GROW_APPEND && nt.force == GROW_NONE)
				f->growth = win32_path(f, fsize);
			*basep = p;
			return 0;
		}
		f->map_base = NULL;
		if (errno != ENOMEM && errno != EINVAL)
			return rc;
	}
	return rc;
}

/* Replace the map (REMAP, or the first section of a file that was empty):
 * the caller keeps every other thread out of it when it is in use (env.c);
 * the old length is put back on failure. */
static int replace_map(os_file *f, uint64_t new_len)
{
	uint64_t old_len = f->view_len;
	int rc, e;

	teardown(f);
	rc = build_at(f, new_len);
	if (rc == 0)
		return 0;
	e = errno;
	if (build_at(f, old_len) != 0) {
		f->lost = 1;
		errno = e;
		return MAPKV_MAP_LOST;
	}
	errno = e;
	return rc;
}

/* APPEND: one more view after the last, at the same base, of a new mapping
 * of the grown file. Nothing mapped moves or goes away, so readers in other
 * threads need not wait; only the free range after the views is released
 * for a moment (a failure there leaves the map as it was). */
static int append_view(os_file *f, uint64_t new_len)
{
	uint64_t old = f->view_len;
	int rc, e;

	if (old % alloc_granularity() != 0) {
		/* Only after a shrink (a copy's file) or a file grown to an
		 * odd size by something else: cannot append. */
		errno = EINVAL;
		return MAPKV_IO;
	}
	tail_release(f);
	rc = win_view_at(f, f->map_base + old, old, new_len - old);
	e = errno;
	if (rc == 0)
		f->view_len = new_len;
	tail_reserve(f);
	errno = e;
	return rc;
}

static int w_map_extend(os_file *f, void *base, uint64_t old_len,
			uint64_t new_len)
{
	uint64_t fsize = 0;
	int rc;

	(void)old_len; /* what is really mapped is f->view_len */
	if (f == NULL || base == NULL || base != f->map_base)
		return MAPKV_INVALID;
	if (f->lost)
		return MAPKV_MAP_LOST;
	if (new_len > f->map_max)
		return MAPKV_FULL;
	if ((rc = file_size(f, &fsize)))
		return rc;
	if (new_len > fsize)
		new_len = fsize; /* the last page ends with the file */
	if (new_len <= f->view_len)
		return 0;

	if (f->bare || f->growth == GROW_REMAP)
		return replace_map(f, new_len);
	if (f->growth == GROW_APPEND)
		return append_view(f, new_len);
	if (f->growth == GROW_NTEXTEND) {
		LARGE_INTEGER sz;
		mk_ntstatus s;

		sz.QuadPart = (LONGLONG)new_len;
		s = nt.extend_section(f->section, &sz);
		if (!MK_NT_OK(s))
			return nt_error(s);
	} else {
		PVOID at = f->map_base + f->view_len;
		SIZE_T n = (SIZE_T)(new_len - f->view_len);
		mk_ntstatus s = nt.allocate_vm(GetCurrentProcess(), &at, 0, &n,
					       MEM_COMMIT, PAGE_READONLY);

		if (!MK_NT_OK(s))
			return nt_error(s);
	}
	f->view_len = new_len;
	return 0;
}

static void w_unmap(os_file *f, void *base, uint64_t max)
{
	int e = errno;

	(void)max;
	if (f == NULL || base == NULL || base != f->map_base)
		return;
	if (!f->lost)
		teardown(f);
	free(f->views);
	f->views = NULL;
	f->vcap = 0;
	f->map_base = NULL;
	f->map_max = 0;
	errno = e;
}

static int set_eof(os_file *f, uint64_t size)
{
	FILE_END_OF_FILE_INFO eof;

	eof.EndOfFile.QuadPart = (LONGLONG)size;
	if (!SetFileInformationByHandle(f->h, FileEndOfFileInfo, &eof,
					sizeof(eof)))
		return win_error();
	return 0;
}

static int w_resize(os_file *f, uint64_t size)
{
	uint64_t cur = 0, keep;
	int rc, e;

	if (f == NULL)
		return MAPKV_INVALID;
	if (size > (uint64_t)INT64_MAX) {
		errno = EFBIG;
		return MAPKV_FULL;
	}
	if (f->lost)
		return MAPKV_MAP_LOST;
	if ((rc = file_size(f, &cur)))
		return rc;
	if (size >= cur || f->map_base == NULL || f->bare)
		return set_eof(f, size);
	/* Shrinking a mapped file: Windows refuses while a section or view
	 * exists, so unmap, set the end and map again at the same base
	 * (pointers into the map are invalid meanwhile: see the top). */
	keep = f->view_len < size ? f->view_len : size;
	teardown(f);
	rc = set_eof(f, size);
	e = errno;
	if (rc)
		keep = f->view_len;
	if (build_at(f, keep) != 0 && build_at(f, 0) != 0) {
		f->lost = 1;
		errno = e;
		return MAPKV_MAP_LOST;
	}
	errno = e;
	return rc;
}

static const char *w_map_growth(os_file *f, int *replaces)
{
	int g = f != NULL ? f->growth : GROW_NONE;

	if (replaces != NULL)
		*replaces = g == GROW_REMAP;
	return growth_name[g];
}

/* ------------------------------------------------------------------ lock */

static int lock_range(os_file *f, uint64_t off, int exclusive, int wait)
{
	OVERLAPPED ov;
	DWORD fl = (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0) |
		   (wait ? 0 : LOCKFILE_FAIL_IMMEDIATELY);

	memset(&ov, 0, sizeof(ov));
	ov.Offset = (DWORD)off;
	ov.OffsetHigh = (DWORD)(off >> 32);
	if (LockFileEx(f->h, fl, 0, 1, 0, &ov))
		return 0;
	if (GetLastError() == ERROR_LOCK_VIOLATION ||
	    GetLastError() == ERROR_IO_PENDING)
		return MAPKV_BUSY;
	return win_error();
}

static int unlock_range(os_file *f, uint64_t off)
{
	OVERLAPPED ov;

	memset(&ov, 0, sizeof(ov));
	ov.Offset = (DWORD)off;
	ov.OffsetHigh = (DWORD)(off >> 32);
	return UnlockFileEx(f->h, 0, 1, 0, &ov) ? 0 : win_error();
}

static int w_lock(os_file *f, int kind, int wait)
{
	int rc;

	if (f == NULL || kind != OS_LOCK_WRITER || f->writer_held)
		return MAPKV_INVALID;
	if ((rc = lock_range(f, LOCK_WRITER_OFF, 1, wait)) == 0)
		f->writer_held = 1;
	return rc;
}

static int w_unlock(os_file *f, int kind)
{
	int rc;

	if (f == NULL || kind != OS_LOCK_WRITER || !f->writer_held)
		return MAPKV_INVALID;
	if ((rc = unlock_range(f, LOCK_WRITER_OFF)) == 0)
		f->writer_held = 0;
	return rc;
}

static int w_lock_byte(os_file *f, uint64_t off, int exclusive, int wait)
{
	int slot = -1, rc;

	if (f == NULL || off >= LOCK_BASE)
		return MAPKV_INVALID;
	for (int i = 0; i < NLOCKS; i++) {
		if (f->locks[i].mode && f->locks[i].off == off) {
			slot = i;
			break;
		}
		if (!f->locks[i].mode && slot < 0)
			slot = i;
	}
	if (slot < 0)
		return MAPKV_INVALID; /* more bytes than the library uses */
	if (f->locks[slot].mode) {
		/* No conversion in place on Windows: unlock, then lock. */
		if (f->locks[slot].mode == (exclusive ? 2 : 1))
			return 0;
		if ((rc = unlock_range(f, LOCK_BASE + off)))
			return rc;
		f->locks[slot].mode = 0;
	}
	if ((rc = lock_range(f, LOCK_BASE + off, exclusive, wait)))
		return rc;
	f->locks[slot].off = off;
	f->locks[slot].mode = exclusive ? 2 : 1;
	return 0;
}

static int w_unlock_byte(os_file *f, uint64_t off)
{
	if (f == NULL)
		return MAPKV_INVALID;
	for (int i = 0; i < NLOCKS; i++) {
		if (f->locks[i].mode && f->locks[i].off == off) {
			f->locks[i].mode = 0;
			return unlock_range(f, LOCK_BASE + off);
		}
	}
	return 0;
}

/* Windows has no "who holds this range": try to lock the range
 * exclusively without waiting and give it back at once. A handle's own
 * locks would count too, so the caller keeps them out of the range. */
static int w_lock_test(os_file *f, uint64_t off, uint64_t len, int *held)
{
	OVERLAPPED ov;

	if (f == NULL || held == NULL || len == 0 || off >= LOCK_BASE ||
	    len > LOCK_BASE - off)
		return MAPKV_INVALID;
	memset(&ov, 0, sizeof(ov));
	ov.Offset = (DWORD)(LOCK_BASE + off);
	ov.OffsetHigh = (DWORD)((LOCK_BASE + off) >> 32);
	if (LockFileEx(f->h,
		       LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0,
		       (DWORD)len, (DWORD)(len >> 32), &ov)) {
		UnlockFileEx(f->h, 0, (DWORD)len, (DWORD)(len >> 32), &ov);
		*held = 0;
		return 0;
	}
	if (GetLastError() == ERROR_LOCK_VIOLATION ||
	    GetLastError() == ERROR_IO_PENDING) {
		*held = 1;
		return 0;
	}
	return win_error();
}

static int w_map_rw(os_file *f, size_t len, void **pp)
{
	HANDLE m;
	void *p;

	if (f == NULL || len == 0 || pp == NULL || f->rw_section != NULL)
		return MAPKV_INVALID;
	m = CreateFileMappingW(f->h, NULL, PAGE_READWRITE,
			       (DWORD)((uint64_t)len >> 32), (DWORD)len, NULL);
	if (m == NULL)
		return win_error();
	p = MapViewOfFile(m, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len);
	if (p == NULL) {
		int rc = win_error(), e = errno;

		CloseHandle(m);
		errno = e;
		return rc;
	}
	f->rw_section = m;
	*pp = p;
	return 0;
}

static void w_unmap_rw(os_file *f, void *p, size_t len)
{
	(void)len;
	if (p != NULL)
		UnmapViewOfFile(p);
	if (f != NULL && f->rw_section != NULL) {
		CloseHandle(f->rw_section);
		f->rw_section = NULL;
	}
}

/* --------------------------------------------------- processes and clock */

static int w_pid_alive(os_vfs *vfs, uint64_t pid)
{
	HANDLE h;
	DWORD code;
	int alive;

	(void)vfs;
	if (pid == 0 || pid > 0xffffffffu)
		return 0;
	h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	if (h == NULL)
		return GetLastError() == ERROR_ACCESS_DENIED; /* exists */
	alive = GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
	CloseHandle(h);
	return alive;
}

static uint64_t w_pid(os_vfs *vfs)
{
	(void)vfs;
	return GetCurrentProcessId();
}

static uint64_t w_clock_ns(os_vfs *vfs)
{
	static LARGE_INTEGER freq; /* constant, racy init is harmless */
	LARGE_INTEGER now;

	(void)vfs;
	if (freq.QuadPart == 0)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	return (uint64_t)((double)now.QuadPart * 1e9 / (double)freq.QuadPart);
}

static uint64_t w_time_ns(os_vfs *vfs)
{
	FILETIME ft;
	uint64_t t;

	(void)vfs;
	GetSystemTimePreciseAsFileTime(&ft);
	t = (uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime;
	/* 100 ns units since 1601 to ns since 1970. */
	return (t - 116444736000000000ull) * 100u;
}

/* ----------------------------------------------------------------- table */

static os_vfs win32_vfs = {
	.name = "win32",
	.ctx = NULL,
	.alloc = w_alloc,
	.realloc = w_realloc,
	.free = w_free,
	.map_granularity = w_map_granularity,
	.page_size = w_page_size,
	.open = w_open,
	.close = w_close,
	.size = w_size,
	.info = w_info,
	.real_path = w_real_path,
	.read = w_read,
	.write = w_write,
	.resize = w_resize,
	.sync = w_sync,
	.write_sync = w_write_sync,
	.remove = w_remove,
	.sync_dir = w_sync_dir,
	.map = w_map,
	.map_extend = w_map_extend,
	.unmap = w_unmap,
	.map_growth = w_map_growth,
	.lock = w_lock,
	.unlock = w_unlock,
	.lock_byte = w_lock_byte,
	.unlock_byte = w_unlock_byte,
	.lock_test = w_lock_test,
	.map_rw = w_map_rw,
	.unmap_rw = w_unmap_rw,
	.pid_alive = w_pid_alive,
	.pid = w_pid,
	.clock_ns = w_clock_ns,
	.time_ns = w_time_ns,
};

os_vfs *os_default_vfs(void)
{
	return &win32_vfs;
}

/* ----------------------------------------------------------------- mutex */

int os_mutex_create(os_mutex **mp)
{
	os_mutex *m;

	if (mp == NULL)
		return MAPKV_INVALID;
	*mp = NULL;
	if ((m = malloc(sizeof(*m))) == NULL)
		return MAPKV_NOMEM;
	InitializeSRWLock(&m->l);
	*mp = m;
	return 0;
}

void os_mutex_destroy(os_mutex *m)
{
	free(m);
}

void os_mutex_lock(os_mutex *m)
{
	AcquireSRWLockExclusive(&m->l);
}

int os_mutex_trylock(os_mutex *m)
{
	return TryAcquireSRWLockExclusive(&m->l) ? 0 : MAPKV_BUSY;
}

void os_mutex_unlock(os_mutex *m)
{
	ReleaseSRWLockExclusive(&m->l);
}

/* ---------------------------------------------------------------- rwlock */

/*
 * The map lock of the remap path (os.h). Shared holds are counted per
 * thread so that a thread may hold several (a read transaction and a write
 * transaction) without ever waiting for itself; an exclusive taker sets
 * its own holds aside (it is not touching the map while it waits or
 * replaces it) and waits until no other thread holds the lock.
 */
typedef struct rw_hold {
	DWORD tid;
	unsigned n;
} rw_hold;

struct os_rwlock {
	SRWLOCK m;
	CONDITION_VARIABLE cv;
	unsigned readers; /* shared holds counted now (all threads) */
	unsigned waiting; /* exclusive takers waiting */
	int writer;       /* held exclusively */
	unsigned wr_mine; /* holds the exclusive taker set aside */
	rw_hold *holds;
	unsigned nholds, cap;
};

int os_rwlock_create(os_rwlock **lp)
{
	os_rwlock *l;

	if (lp == NULL)
		return MAPKV_INVALID;
	*lp = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return MAPKV_NOMEM;
	InitializeSRWLock(&l->m);
	InitializeConditionVariable(&l->cv);
	*lp = l;
	return 0;
}

void os_rwlock_destroy(os_rwlock *l)
{
	if (l == NULL)
		return;
	free(l->holds);
	free(l);
}

static rw_hold *rw_find(os_rwlock *l, DWORD tid)
{
	for (unsigned i = 0; i < l->nholds; i++)
		if (l->holds[i].tid == tid)
			return &l->holds[i];
	return NULL;
}

static void rw_drop(os_rwlock *l, rw_hold *h)
{
	*h = l->holds[--l->nholds];
}

/* Add @n holds for this thread, waiting for an exclusive holder (and
 * giving way to waiting ones) only when the thread holds none yet. */
static int rw_add(os_rwlock *l, unsigned n)
{
	DWORD tid = GetCurrentThreadId();
	rw_hold *h;

	AcquireSRWLockExclusive(&l->m);
	h = rw_find(l, tid);
	if (h == NULL) {
		while (l->writer || l->waiting)
			SleepConditionVariableSRW(&l->cv, &l->m, INFINITE, 0);
		if (l->nholds == l->cap) {
			unsigned cap = l->cap ? 2 * l->cap : 8;
			rw_hold *v = realloc(l->holds, cap * sizeof(*v));

			if (v == NULL) {
				ReleaseSRWLockExclusive(&l->m);
				return MAPKV_NOMEM;
			}
			l->holds = v;
			l->cap = cap;
		}
		h = &l->holds[l->nholds++];
		h->tid = tid;
		h->n = 0;
	}
	h->n += n;
	l->readers += n;
	ReleaseSRWLockExclusive(&l->m);
	return 0;
}

int os_rwlock_rdlock(os_rwlock *l)
{
	return rw_add(l, 1);
}

void os_rwlock_rdunlock(os_rwlock *l)
{
	rw_hold *h;

	AcquireSRWLockExclusive(&l->m);
	h = rw_find(l, GetCurrentThreadId());
	assert(h != NULL && h->n > 0);
	if (h != NULL && h->n > 0) {
		h->n--;
		l->readers--;
		if (h->n == 0)
			rw_drop(l, h);
	}
	WakeAllConditionVariable(&l->cv);
	ReleaseSRWLockExclusive(&l->m);
}

unsigned os_rwlock_suspend(os_rwlock *l)
{
	unsigned n = 0;
	rw_hold *h;

	AcquireSRWLockExclusive(&l->m);
	h = rw_find(l, GetCurrentThreadId());
	if (h != NULL) {
		n = h->n;
		l->readers -= n;
		rw_drop(l, h);
	}
	WakeAllConditionVariable(&l->cv);
	ReleaseSRWLockExclusive(&l->m);
	return n;
}

int os_rwlock_resume(os_rwlock *l, unsigned n)
{
	return n ? rw_add(l, n) : 0;
}

void os_rwlock_wrlock(os_rwlock *l)
{
	unsigned mine = os_rwlock_suspend(l);

	AcquireSRWLockExclusive(&l->m);
	l->waiting++;
	while (l->writer || l->readers > 0)
		SleepConditionVariableSRW(&l->cv, &l->m, INFINITE, 0);
	l->waiting--;
	l->writer = 1;
	l->wr_mine = mine;
	ReleaseSRWLockExclusive(&l->m);
}

void os_rwlock_wrunlock(os_rwlock *l)
{
	DWORD tid = GetCurrentThreadId();
	unsigned mine;

	AcquireSRWLockExclusive(&l->m);
	mine = l->wr_mine;
	l->writer = 0;
	l->wr_mine = 0;
	if (mine > 0) {
		/* Give the holds back; nothing can fail: the entry was freed
		 * by suspend and the array keeps its capacity. */
		rw_hold *h = rw_find(l, tid);

		if (h == NULL) {
			h = &l->holds[l->nholds++];
			h->tid = tid;
			h->n = 0;
		}
		h->n += mine;
		l->readers += mine;
	}
	WakeAllConditionVariable(&l->cv);
	ReleaseSRWLockExclusive(&l->m);
}
