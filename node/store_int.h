/* store_int.h: what the store's files share (store.c, store_write.c, store_apply.c,
 * store_snapshot.c): the store itself (struct nd_store), its fixed statements, and the
 * helpers more than one path uses.  Included by those four files only; its functions
 * carry the prefix nd_st_.  Each is described where it is defined. */
#ifndef ND_STORE_INT_H
#define ND_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audience.h"
#include "body.h"
#include "change.h"
#include "collate.h"
#include "compact.h"
#include "hlc.h"
#include "merge.h"
#include "store.h"
#include "uuid.h"

/* Keys of the settings table the store keeps itself. */
#define KEY_NODE_ID      "node_id"
#define KEY_NODE_NAME    "node_name"
#define KEY_CLOCK        "clock"
#define KEY_CURSOR       "cursor"
#define KEY_PUSHED_UPTO  "pushed_upto"

/* The fixed statements, prepared once (their SQL: fixed_sql in store.c). */
enum {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_SETTING_GET, ST_SETTING_SET, ST_SETTING_DEL,
    ST_LOG_ADD, ST_LOG_APPLY, ST_LOG_LAST, ST_OUTBOX,
    ST_CONFLICT_ADD, ST_CONFLICT_ANY, ST_CONFLICT_WINNER, ST_CONFLICT_COUNT,
    ST_COUNT
};

/* Records known live here, for the reference checks of writes: an import or a batch of
 * activities names the same few orgs and members thousands of times.  A slot holds only
 * while its generation is its kind's: a row of that kind written, or a transaction
 * begun or ended (another process may write in between), makes it a new one. */
#define LIVE_SLOTS 64

typedef struct live_slot {
    uint64_t  gen;
    ld_kind_t kind;
    char      id[LD_RECORD_ID_MAX + 1];
} live_slot_t;

struct nd_store {
    sqlite3       *db;
    char          *path;
    char           node_id[LD_ID_MAX + 1];
    char          *node_name;                     /* owned, "" before init */
    ld_hlc_t       clock;
    uint64_t       clock_saved;                   /* the clock value in settings */
    uint64_t       last_seq;                      /* valid inside a transaction */
    int            depth;                         /* open transaction levels */
    bool           group;                         /* nd_store_begin is open */
    bool           bulk;                          /* ... by nd_store_begin_bulk */
    bool           broken;                        /* a write in it failed part way */
    uint64_t       group_seq;                     /* last_seq when the group began */
    nd_audience_t *aud;
    nd_collate_t  *collate;                       /* names in order: the collation "zh" */
    ld_uuid7_t     ids;                           /* new record ids (uuid.h) */
    ld_buf_t       packed;                        /* the change being logged */
    char          *stamps;                        /* the stamps of the row being written ... */
    size_t         stamps_cap;                    /* ... in a buffer of this many bytes */
    uint64_t       live_gen[LD_KIND_COUNT];       /* see live_slot_t */
    live_slot_t    live[LIVE_SLOTS];
    sqlite3_stmt  *st[ST_COUNT];
    sqlite3_stmt  *row_get[LD_KIND_COUNT];        /* ?1 id -> fields..., deleted, stamps */
    sqlite3_stmt  *row_put[LD_KIND_COUNT];        /* upsert of the whole row */
    sqlite3_stmt  *row_new[LD_KIND_COUNT];        /* the same insert; a row there stays */
};

/* ------------------------------------------------------------- store.c ---- */

/* helpers */
void nd_st_copy_text(char *dst, size_t size, const char *src);
void nd_st_forget(nd_store_t *self, ld_kind_t kind);

/* settings and transaction levels */
int nd_st_setting_put_u64(nd_store_t *self, const char *key, uint64_t v, ld_error_t *err);
int nd_st_broken_group(nd_store_t *self, ld_error_t *err);
int nd_st_tx_begin(nd_store_t *self, ld_error_t *err);
int nd_st_tx_end(nd_store_t *self, bool ok, uint64_t seq_before, ld_error_t *err);

/* rows */
int nd_st_row_load(nd_store_t *self, const ld_kind_def_t *def, const char *id,
                   nd_record_t *r, ld_error_t *err);
int nd_st_row_write(nd_store_t *self, const nd_record_t *r, sqlite3_stmt *st, bool *written,
                    ld_error_t *err);
int nd_st_row_save(nd_store_t *self, const nd_record_t *r, ld_error_t *err);
int nd_st_row_live(nd_store_t *self, const ld_kind_def_t *def, const char *id, bool *live,
                   ld_error_t *err);

/* the change log and the conflict log */
int nd_st_log_add(nd_store_t *self, const ld_change_t *c, int which, bool checked,
                  bool *added, ld_error_t *err);
int nd_st_emit(nd_store_t *self, ld_change_t *c, const nd_nodes_t *to, bool checked,
               ld_error_t *err);
int nd_st_conflicts_log(nd_store_t *self, const nd_record_t *r, const nd_merge_result_t *res,
                        ld_error_t *err);
int nd_st_conflicts_follow(nd_store_t *self, const nd_record_t *r,
                           const nd_merge_result_t *res, ld_error_t *err);

/* ---------------------------------------------------- store_snapshot.c ---- */

int nd_st_snapshot(nd_store_t *self, ld_kind_t kind, const char *id, const char *node,
                   ld_error_t *err);
int nd_st_send_orgs(nd_store_t *self, const nd_record_t *r, const char *node, ld_error_t *err);
int nd_st_owner_nodes(nd_store_t *self, ld_kind_t owner, const char *id, nd_nodes_t *out,
                      ld_error_t *err);
int nd_st_snapshot_owner(nd_store_t *self, ld_kind_t owner, const char *id, const char *node,
                         const char *skip, ld_error_t *err);

#endif
