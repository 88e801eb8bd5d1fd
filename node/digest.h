/* digest.h: digests of the records this node shares with another node, per kind and
 * per record, which two branches compare (read out over the phone, or as files) to know
 * that their stores agree, or which records differ.
 *
 * Shared means what both must hold, by rules each side evaluates alike from what it
 * holds: a member and his records when one of the two keeps his org and the other the
 * org of a trip of his under way (registered or reported in); a trip also when it went
 * to the other's org; an agreement with its contacts and visits when each keeps one of
 * its orgs; an org when the other keeps it or was sent it.  A member who came home or
 * moved on is no longer shared with the branch he left, on either side; the trip he
 * ended still is.  A record's digest covers its kind, id, tombstone and every field's
 * value, not who wrote them or when: two stores agree when they say the same. */
#ifndef ND_DIGEST_H
#define ND_DIGEST_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "error.h"
#include "schema.h"

#define ND_DIGEST_BYTES 16                /* BLAKE2b-128 */
#define ND_DIGEST_TEXT  (ND_DIGEST_BYTES * 2 + 1)

/* The records of one kind this node shares with the other, and their digest (of every
 * record's digest, in id order). */
typedef struct nd_digest_kind {
    size_t  records;
    uint8_t digest[ND_DIGEST_BYTES];
} nd_digest_kind_t;

/* What nd_digest found: per kind (indexed by ld_kind_t), and over every kind. */
typedef struct nd_digest {
    nd_digest_kind_t kinds[LD_KIND_COUNT];
    nd_digest_kind_t all;
} nd_digest_t;

/* Called for each shared record, by kind then id; a non-zero return stops the walk and
 * is returned by nd_digest. */
typedef int (*nd_digest_record_fn)(void *ctx, const ld_kind_def_t *def, const char *id,
                                   const uint8_t digest[ND_DIGEST_BYTES]);

/* Digests the records of the store db (node `self_node`) shared with node `peer`, in one
 * read transaction; fn (may be NULL) sees each record.  0, LD_EIO or LD_ENOMEM, or what
 * fn returned. */
int nd_digest(sqlite3 *db, const char *self_node, const char *peer, nd_digest_t *out,
              nd_digest_record_fn fn, void *ctx, ld_error_t *err);

/* Whether the two nodes co-manage something in the store db: a trip from an org one
 * keeps to an org the other keeps, or an agreement between such orgs.  Only such a pair
 * sees the same records as shared (a branch does not hear of a member's next branch).
 * 0 with *yes set, or LD_EIO. */
int nd_digest_comparable(sqlite3 *db, const char *self_node, const char *peer, bool *yes,
                         ld_error_t *err);

/* The first `groups` groups of four hex digits of digest, space-separated, into out
 * (at least ND_DIGEST_TEXT + ND_DIGEST_BYTES / 2 bytes): "3f9a 1c22 07be 9d41". */
void nd_digest_text(const uint8_t digest[ND_DIGEST_BYTES], size_t groups, char *out);

#endif
