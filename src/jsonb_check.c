/*
 * jsonb_check.c
 *	  Validation of the on-disk jsonb format (utils/jsonb.h) of a value read
 *	  from Redis, before PostgreSQL's jsonb code is let near it.
 *
 * PostgreSQL trusts a jsonb datum completely: a wrong count, offset or
 * numeric length makes its readers go out of bounds.  A value from Redis is
 * authenticated by the envelope MAC first, so this is defence in depth
 * against our own bugs and against values of other versions; it must still
 * accept exactly what PostgreSQL builds and refuse, without reading out of
 * bounds, anything a reader could trip over:
 *
 *	- a container header has a count and exactly one of JB_FOBJECT and
 *	  JB_FARRAY (plus JB_FSCALAR, at the root only, on a one-element array
 *	  holding a scalar); its JEntry array and every child lie inside it, and
 *	  the children fill it exactly;
 *	- a child's end is its JEntry's offset (JENTRY_HAS_OFF) or the previous
 *	  end plus its length, which is how PostgreSQL's getJsonbOffset and
 *	  getJsonbLength find it;
 *	- strings are valid in the database encoding and hold no NUL byte;
 *	- numerics and nested containers start at the int-aligned offset
 *	  (INTALIGN, as fillJsonbValue reads them); a numeric is an uncompressed
 *	  4-byte-header varlena filling its child exactly, with a known header
 *	  form and digits below NBASE;
 *	- booleans and nulls are empty, and the type bits are one of the six
 *	  defined;
 *	- object keys are strings, sorted by length and then bytes, without
 *	  duplicates (PostgreSQL's binary search over keys relies on it);
 *	- nesting is at most MLCACHE_JSONB_MAX_DEPTH deep.
 *
 * Input is read with memcpy, so it need not be aligned.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/jsonb.h"

#include "jsonb_check.h"

/*
 * The numeric on-disk header (private to numeric.c; its format is fixed by
 * pg_upgrade compatibility): a uint16 whose two top bits are the form.
 */
#define NUM_FORM_MASK		0xC000
#define NUM_FORM_POS		0x0000	/* long form, positive */
#define NUM_FORM_NEG		0x4000	/* long form, negative */
#define NUM_FORM_SHORT		0x8000
#define NUM_FORM_SPECIAL	0xC000
#define NUM_NAN				0xC000
#define NUM_PINF			0xD000
#define NUM_NINF			0xF000
#define NUM_NBASE			10000

static bool jbc_container(const char *c, Size len, int depth, bool root);

static uint32
jbc_get32(const char *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return v;
}

/* A numeric varlena of exactly len bytes at p. */
static bool
jbc_numeric(const char *p, Size len)
{
	varattrib_4b vlhdr;			/* only its first 4 bytes are used */
	uint16		hdr;
	Size		hdrsz;
	Size		i;

	if (len < VARHDRSZ + sizeof(uint16))
		return false;
	memcpy(&vlhdr, p, VARHDRSZ);
	if (!VARATT_IS_4B_U(&vlhdr) || VARSIZE_4B(&vlhdr) != len)
		return false;
	memcpy(&hdr, p + VARHDRSZ, 2);
	switch (hdr & NUM_FORM_MASK)
	{
		case NUM_FORM_SPECIAL:
			return hdr == NUM_NAN || hdr == NUM_PINF || hdr == NUM_NINF;
		case NUM_FORM_SHORT:
			hdrsz = sizeof(uint16);
			break;
		default:				/* NUM_FORM_POS, NUM_FORM_NEG */
			hdrsz = 2 * sizeof(uint16);
			break;
	}
	if (len < VARHDRSZ + hdrsz || (len - VARHDRSZ - hdrsz) % sizeof(uint16) != 0)
		return false;
	for (i = VARHDRSZ + hdrsz; i < len; i += sizeof(uint16))
	{
		uint16		digit;

		memcpy(&digit, p + i, 2);
		if (digit >= NUM_NBASE)
			return false;
	}
	return true;
}

/* A string of len bytes at p: valid in the database encoding, no NUL. */
static bool
jbc_string(const char *p, Size len)
{
	if (len > (Size) PG_INT32_MAX)
		return false;
	return pg_encoding_verifymbstr(GetDatabaseEncoding(), p, (int) len) == (int) len;
}

/*
 * One child: its JEntry je, its bytes p[0..len), which start offset bytes
 * into its container's data area.  depth is its container's.
 */
static bool
jbc_child(JEntry je, const char *p, Size offset, Size len, int depth)
{
	Size		pad = INTALIGN(offset) - offset;

	switch (je & JENTRY_TYPEMASK)
	{
		case JENTRY_ISSTRING:
			return jbc_string(p, len);
		case JENTRY_ISNUMERIC:
			return pad <= len && jbc_numeric(p + pad, len - pad);
		case JENTRY_ISBOOL_FALSE:
		case JENTRY_ISBOOL_TRUE:
		case JENTRY_ISNULL:
			return len == 0;
		case JENTRY_ISCONTAINER:
			return pad <= len && jbc_container(p + pad, len - pad, depth + 1, false);
		default:
			return false;
	}
}

/* Do object keys a (alen bytes) and b come in jsonb's strict key order? */
static bool
jbc_keys_ordered(const char *a, Size alen, const char *b, Size blen)
{
	if (alen != blen)
		return alen < blen;
	return memcmp(a, b, alen) < 0;
}

/* Is header a valid container header, at the root or nested? */
static bool
jbc_header(uint32 header, bool root, bool *is_object)
{
	uint32		flags = header & ~JB_CMASK;

	*is_object = (flags == JB_FOBJECT);
	if (flags == JB_FOBJECT || flags == JB_FARRAY)
		return true;
	return root && flags == (JB_FARRAY | JB_FSCALAR) && (header & JB_CMASK) == 1;
}

/* A container of exactly len bytes at c. */
static bool
jbc_container(const char *c, Size len, int depth, bool root)
{
	uint32		header;
	bool		is_object;
	Size		count,
				nchildren,
				i;
	Size		end = 0;
	const char *data;
	Size		datalen;
	const char *prevkey = NULL;
	Size		prevkeylen = 0;

	if (depth > MLCACHE_JSONB_MAX_DEPTH || len < sizeof(uint32))
		return false;
	header = jbc_get32(c);
	if (!jbc_header(header, root, &is_object))
		return false;
	count = header & JB_CMASK;
	nchildren = is_object ? 2 * count : count;
	if (nchildren > (len - sizeof(uint32)) / sizeof(JEntry))
		return false;
	data = c + sizeof(uint32) + nchildren * sizeof(JEntry);
	datalen = len - sizeof(uint32) - nchildren * sizeof(JEntry);

	for (i = 0; i < nchildren; i++)
	{
		JEntry		je = jbc_get32(c + sizeof(uint32) + i * sizeof(JEntry));
		Size		start = end;

		end = JBE_HAS_OFF(je) ? JBE_OFFLENFLD(je) : start + JBE_OFFLENFLD(je);
		if (end < start || end > datalen)
			return false;
		if ((header & JB_FSCALAR) && JBE_ISCONTAINER(je))
			return false;
		if (is_object && i < count)
		{
			if (!JBE_ISSTRING(je) ||
				(prevkey != NULL &&
				 !jbc_keys_ordered(prevkey, prevkeylen, data + start, end - start)))
				return false;
			prevkey = data + start;
			prevkeylen = end - start;
		}
		if (!jbc_child(je, data + start, start, end - start, depth))
			return false;
	}
	return end == datalen;
}

/*
 * Is body (len bytes) a well-formed jsonb varlena body, i.e. what follows
 * the varlena header of a Jsonb?  Never reads outside body.
 */
bool
mlcache_jsonb_valid(const char *body, Size len)
{
	return jbc_container(body, len, 0, true);
}
