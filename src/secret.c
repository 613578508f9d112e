/*
 * secret.c
 *	  The per-cluster secret that keys the MAC of every Redis value
 *	  (envelope.c), kept in the data directory and never anywhere else.
 *
 * The file MLCACHE_SECRET_FILE holds 32 random bytes from pg_strong_random
 * as 64 hexadecimal digits and a newline.  It is created on the first start
 * with mlcache preloaded, mode 0600, written to a temporary file, fsynced
 * and renamed into place (durable_rename), so a crash leaves either no file
 * or a whole one.  It is read by the postmaster when shared memory is
 * initialised (also after a crash restart), whose working directory is the
 * data directory; every process then finds it in shared memory.  Because it
 * lives in the data directory, pg_basebackup copies it: a primary and the
 * standbys made from it share the secret.
 *
 * A file that exists but cannot be read, has the wrong size or content, or
 * can be read by every user, is not replaced (it may be an administrator's
 * mistake worth seeing): it is reported, and L2 is refused until the server
 * is restarted with a usable file.  The secret is never logged.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fd.h"

#include "envelope.h"
#include "secret.h"

#define SECRET_TMP_FILE MLCACHE_SECRET_FILE ".tmp"
#define SECRET_FILE_SIZE (2 * MLCACHE_SECRET_LEN + 1)

static int
secret_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parse the file's text into secret; false unless it is well formed. */
static bool
secret_parse(const char *text, uint8 *secret)
{
	int			i;

	if (text[SECRET_FILE_SIZE - 1] != '\n')
		return false;
	for (i = 0; i < MLCACHE_SECRET_LEN; i++)
	{
		int			hi = secret_hexval(text[2 * i]);
		int			lo = secret_hexval(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		secret[i] = (uint8) (hi << 4 | lo);
	}
	return true;
}

/* Report an unusable secret file; L2 stays off. */
static void
secret_unusable(const char *detail)
{
	ereport(WARNING,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("mlcache cannot use its secret file \"%s\": %s; Redis (L2) is not used",
					MLCACHE_SECRET_FILE, detail),
			 errdetail("Every Redis value is authenticated with this secret, so without it no value can be trusted."),
			 errhint("Stop the server, remove or repair \"%s\" in the data directory, and start it again; a missing file is created with a new secret, and values already in Redis then become misses.",
					 MLCACHE_SECRET_FILE)));
}

/*
 * Read an existing file from fd into secret.  Returns false after
 * reporting why it cannot be used.
 */
static bool
secret_read(int fd, uint8 *secret)
{
	struct stat st;
	char		text[SECRET_FILE_SIZE];
	ssize_t		n;
	bool		ok;

	if (fstat(fd, &st) != 0)
	{
		secret_unusable("could not stat the file");
		return false;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != SECRET_FILE_SIZE)
	{
		secret_unusable("it is not a regular file of 65 bytes");
		return false;
	}
	if ((st.st_mode & S_IRWXO) != 0)
	{
		secret_unusable("other users can access it (it must have mode 0600)");
		return false;
	}
	n = read(fd, text, sizeof(text));
	ok = (n == SECRET_FILE_SIZE && secret_parse(text, secret));
	explicit_bzero(text, sizeof(text));
	if (!ok)
		secret_unusable(n < 0 ? "could not read the file" : "its content is not 64 hexadecimal digits and a newline");
	return ok;
}

/* Write text to a new file path, mode 0600, and fsync it; false on failure. */
static bool
secret_write_tmp(const char *path, const char *text, Size len)
{
	int			fd;
	bool		ok;

	(void) unlink(path);
	fd = OpenTransientFilePerm(path, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY,
							   S_IRUSR | S_IWUSR);
	if (fd < 0)
		return false;
	ok = write(fd, text, len) == (ssize_t) len && pg_fsync(fd) == 0;
	if (CloseTransientFile(fd) != 0)
		ok = false;
	if (!ok)
	{
		int			save_errno = errno;

		(void) unlink(path);
		errno = save_errno;
	}
	return ok;
}

/* Create the file with a new random secret; false after reporting. */
static bool
secret_create(uint8 *secret)
{
	static const char hex[] = "0123456789abcdef";
	char		text[SECRET_FILE_SIZE];
	bool		ok;
	int			i;

	if (!pg_strong_random(secret, MLCACHE_SECRET_LEN))
	{
		secret_unusable("no strong random numbers are available to create it");
		return false;
	}
	for (i = 0; i < MLCACHE_SECRET_LEN; i++)
	{
		text[2 * i] = hex[secret[i] >> 4];
		text[2 * i + 1] = hex[secret[i] & 0xf];
	}
	text[SECRET_FILE_SIZE - 1] = '\n';
	ok = secret_write_tmp(SECRET_TMP_FILE, text, sizeof(text));
	explicit_bzero(text, sizeof(text));
	if (!ok)
	{
		secret_unusable(psprintf("could not write \"%s\": %m", SECRET_TMP_FILE));
		return false;
	}
	if (durable_rename(SECRET_TMP_FILE, MLCACHE_SECRET_FILE, LOG) != 0)
	{
		secret_unusable("could not rename the new file into place");
		return false;
	}
	ereport(LOG,
			(errmsg("mlcache created a new secret in \"%s\"", MLCACHE_SECRET_FILE),
			 errdetail("Values in Redis written under another secret are misses.")));
	return true;
}

/*
 * Load the cluster secret into secret (MLCACHE_SECRET_LEN bytes), creating
 * the file if there is none.  Runs where the working directory is the data
 * directory (the postmaster, or a single-user backend) while shared memory
 * is initialised, under AddinShmemInitLock (shmem.c).  Returns false,
 * having reported why, if there is no usable secret; secret is then
 * undefined.
 */
bool
mlcache_secret_load(uint8 *secret)
{
	int			fd;
	bool		ok;

	fd = OpenTransientFile(MLCACHE_SECRET_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0 && errno == ENOENT)
		return secret_create(secret);
	if (fd < 0)
	{
		secret_unusable(psprintf("could not open it: %m"));
		return false;
	}
	ok = secret_read(fd, secret);
	CloseTransientFile(fd);
	return ok;
}
