/*
 * kafka.h: the Kafka protocol codec (pure: no sockets, no globals, no allocation beyond the
 * request's arena and the response buffer) and the entry points of the Kafka handlers.
 *
 * Framing: every request and response is an int32 big-endian size followed by that many
 * bytes. A request starts with its header:
 *   v1: api_key int16, api_version int16, correlation_id int32, client_id nullable string
 *   v2: the same followed by tagged fields (requests in a flexible version)
 * A response starts with correlation_id int32 (header v0), followed by tagged fields in
 * flexible versions (header v1), except ApiVersions whose response header is always v0.
 *
 * Flexible versions (KIP-482) encode strings, arrays and bytes "compact" (length + 1 as an
 * unsigned varint, 0 meaning null) and end every struct with tagged fields (a count, then
 * tag, size, bytes each). Decoders skip unknown tags; encoders write none unless named.
 *
 * Field layouts follow the JSON message definitions in Kafka's source; each decoder and
 * encoder below names the versions that carry each field.
 */
#ifndef TD_PROTO_KAFKA_H
#define TD_PROTO_KAFKA_H

#include "base/base.h"

/* API keys this broker serves. */
enum {
    KAFKA_PRODUCE = 0,
    KAFKA_FETCH = 1,
    KAFKA_LIST_OFFSETS = 2,
    KAFKA_METADATA = 3,
    KAFKA_OFFSET_COMMIT = 8,
    KAFKA_OFFSET_FETCH = 9,
    KAFKA_FIND_COORDINATOR = 10,
    KAFKA_JOIN_GROUP = 11,
    KAFKA_HEARTBEAT = 12,
    KAFKA_LEAVE_GROUP = 13,
    KAFKA_SYNC_GROUP = 14,
    KAFKA_DESCRIBE_GROUPS = 15,
    KAFKA_LIST_GROUPS = 16,
    KAFKA_SASL_HANDSHAKE = 17,
    KAFKA_API_VERSIONS = 18,
    KAFKA_CREATE_TOPICS = 19,
    KAFKA_DELETE_TOPICS = 20,
    KAFKA_DELETE_RECORDS = 21,
    KAFKA_INIT_PRODUCER_ID = 22,
    KAFKA_ADD_PARTITIONS_TO_TXN = 24,
    KAFKA_ADD_OFFSETS_TO_TXN = 25,
    KAFKA_END_TXN = 26,
    KAFKA_TXN_OFFSET_COMMIT = 28,
    KAFKA_DESCRIBE_ACLS = 29,
    KAFKA_CREATE_ACLS = 30,
    KAFKA_DELETE_ACLS = 31,
    KAFKA_DESCRIBE_CONFIGS = 32,
    KAFKA_DELETE_GROUPS = 42,
    KAFKA_OFFSET_DELETE = 47,
    KAFKA_ALTER_CONFIGS = 33,
    KAFKA_SASL_AUTHENTICATE = 36,
    KAFKA_CREATE_PARTITIONS = 37,
    KAFKA_INCREMENTAL_ALTER_CONFIGS = 44,
    KAFKA_DESCRIBE_CLIENT_QUOTAS = 48,
    KAFKA_ALTER_CLIENT_QUOTAS = 49,
    KAFKA_DESCRIBE_USER_SCRAM_CREDENTIALS = 50,
    KAFKA_ALTER_USER_SCRAM_CREDENTIALS = 51,
    KAFKA_DESCRIBE_CLUSTER = 60,
    KAFKA_DESCRIBE_PRODUCERS = 61,
    KAFKA_DESCRIBE_TRANSACTIONS = 65,
    KAFKA_LIST_TRANSACTIONS = 66,
    KAFKA_API_KEYS = 67, /* one more than the highest key served */
};

/* Kafka error codes used here. */
enum {
    KERR_UNKNOWN_SERVER_ERROR = -1,
    KERR_NONE = 0,
    KERR_OFFSET_OUT_OF_RANGE = 1,
    KERR_CORRUPT_MESSAGE = 2,
    KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KERR_LEADER_NOT_AVAILABLE = 5,
    KERR_REQUEST_TIMED_OUT = 7,
    KERR_MESSAGE_TOO_LARGE = 10,
    KERR_OFFSET_METADATA_TOO_LARGE = 12,
    KERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    KERR_COORDINATOR_NOT_AVAILABLE = 15,
    KERR_NOT_COORDINATOR = 16,
    KERR_INVALID_TOPIC_EXCEPTION = 17,
    KERR_RECORD_LIST_TOO_LARGE = 18,
    KERR_NOT_ENOUGH_REPLICAS = 19,
    KERR_INVALID_REQUIRED_ACKS = 21,
    KERR_ILLEGAL_GENERATION = 22,
    KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    KERR_INVALID_GROUP_ID = 24,
    KERR_UNKNOWN_MEMBER_ID = 25,
    KERR_INVALID_SESSION_TIMEOUT = 26,
    KERR_REBALANCE_IN_PROGRESS = 27,
    KERR_INVALID_COMMIT_OFFSET_SIZE = 28,
    KERR_TOPIC_AUTHORIZATION_FAILED = 29,
    KERR_GROUP_AUTHORIZATION_FAILED = 30,
    KERR_CLUSTER_AUTHORIZATION_FAILED = 31,
    KERR_INVALID_TIMESTAMP = 32,
    KERR_UNSUPPORTED_VERSION = 35,
    KERR_TOPIC_ALREADY_EXISTS = 36,
    KERR_INVALID_PARTITIONS = 37,
    KERR_INVALID_REPLICATION_FACTOR = 38,
    KERR_INVALID_REPLICA_ASSIGNMENT = 39,
    KERR_INVALID_CONFIG = 40,
    KERR_INVALID_REQUEST = 42,
    KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    KERR_POLICY_VIOLATION = 44,
    KERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    KERR_INVALID_PRODUCER_EPOCH = 47,
    KERR_INVALID_TXN_STATE = 48,
    KERR_INVALID_PRODUCER_ID_MAPPING = 49,
    KERR_INVALID_TRANSACTION_TIMEOUT = 50,
    KERR_CONCURRENT_TRANSACTIONS = 51,
    KERR_TRANSACTION_COORDINATOR_FENCED = 52,
    KERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    KERR_OPERATION_NOT_ATTEMPTED = 55,
    KERR_KAFKA_STORAGE_ERROR = 56,
    KERR_UNKNOWN_PRODUCER_ID = 59,
    KERR_NON_EMPTY_GROUP = 68,
    KERR_GROUP_ID_NOT_FOUND = 69,
    KERR_FETCH_SESSION_ID_NOT_FOUND = 70,
    KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KERR_MEMBER_ID_REQUIRED = 79,
    KERR_GROUP_MAX_SIZE_REACHED = 81,
    KERR_FENCED_INSTANCE_ID = 82,
    KERR_GROUP_SUBSCRIBED_TO_TOPIC = 86,
    KERR_INVALID_RECORD = 87,
    KERR_UNSTABLE_OFFSET_COMMIT = 88,
    KERR_PRODUCER_FENCED = 90,
    KERR_UNKNOWN_TOPIC_ID = 100,
    KERR_TRANSACTIONAL_ID_NOT_FOUND = 105,
};

/* How a request of an API is answered (kafka_api.answers). */
typedef enum kafka_answers {
    KAFKA_ANSWERS_NOW,   /* encoded when its handler returns */
    KAFKA_ANSWERS_LATER, /* the handler marks it ready itself, later (Produce: once durable;
                          * Fetch: once min_bytes arrived or max_wait_ms passed) */
    KAFKA_ANSWERS_NOW_OR_LATER, /* later when the handler called kreq_async_begin (the
                                 * coordinator, a password check), else now */
} kafka_answers;

struct kreq;
struct kafka_reader;

/*
 * One API this broker serves, as one row of the one table of APIs (apis.c): its key, version
 * range and first flexible version (INT16_MAX: none in range), what ApiVersions lists, the
 * codec's encodings and the framing's checks use; and, for the server (handler_int.h), its
 * handler and how it answers. A handler decodes the request's body from r and encodes the
 * response into q's output (or sets q->out.err).
 */
typedef struct kafka_api {
    int16_t key, min, max, flexible;
    const char *name; /* Kafka's name: "Produce", "Fetch", ... */
    kafka_answers answers;
    void (*handle)(struct kreq *q, struct kafka_reader *r);
} kafka_api;
/* NULL if the key is not served. */
const kafka_api *kafka_api_find(int16_t key);
/* Every API served, in the order ApiVersions lists them. */
const kafka_api *kafka_api_all(size_t *n);
bool kafka_is_flexible(int16_t key, int16_t version);
/* Response header version: 1 for flexible versions, except ApiVersions (always 0). */
int kafka_response_header_version(int16_t key, int16_t version);

/* ---------------------------------------------------------------------------------------------
 * Reader: a cursor over one frame. The first error sticks (err = TD_EPROTO for malformed or
 * truncated input, TD_ETOOBIG for a count above a limit, -ENOMEM); later reads return zeros.
 * Arrays are checked against the bytes left before anything is allocated (every element is
 * at least one byte), so a lying count cannot make the decoder allocate.
 */
typedef struct kafka_reader {
    const uint8_t *p;
    size_t n, off;
    int err;
    bool flexible;
    td_arena *arena;
} kafka_reader;

void kr_init(kafka_reader *r, const uint8_t *p, size_t n, td_arena *a);
int8_t kr_i8(kafka_reader *r);
int16_t kr_i16(kafka_reader *r);
int32_t kr_i32(kafka_reader *r);
int64_t kr_i64(kafka_reader *r);
double kr_f64(kafka_reader *r);
bool kr_bool(kafka_reader *r);
uint32_t kr_uvarint(kafka_reader *r);
void kr_uuid(kafka_reader *r, uint8_t out[16]);
/* A string copied into the arena with a terminating NUL; NULL for a null string. Compact in
 * flexible versions unless `classic` (the request header's client_id is always classic). */
const char *kr_string(kafka_reader *r);
/* Bytes borrowed from the frame (not copied); *len -1 for null. */
uint8_t *kr_bytes(kafka_reader *r, int32_t *len);
/* An array's element count: -1 for null; sets err if it cannot fit in the bytes left. */
int32_t kr_array(kafka_reader *r);
/* Selects the encoding (classic or compact) of API key at version v. */
void kr_set_flexible(kafka_reader *r, int16_t key, int16_t v);
/* Skips the tagged fields of a struct in flexible versions. */
void kr_tags(kafka_reader *r);
void *kr_alloc(kafka_reader *r, size_t count, size_t size);
/* Reads an array's count and allocates that many zeroed elements: a null array (or an error)
 * gives *count 0. */
void *kr_array_alloc(kafka_reader *r, size_t size, int32_t *count);

/* ---------------------------------------------------------------------------------------------
 * Output: a response frame as memory with file ranges spliced in (for zero-copy fetch). The
 * first error sticks in err (-ENOMEM). File ranges are described by `ref`, which the caller
 * releases once sent (kafka_out_free does not know how).
 */
typedef struct kafka_file_part {
    size_t mem_at; /* the range goes after this many bytes of mem */
    int fd;
    int64_t pos, len;
    void *ref;
} kafka_file_part;

typedef struct kafka_out {
    td_buf mem;
    kafka_file_part *files;
    size_t nfiles, files_cap;
    int64_t file_bytes;
    int err;
    bool flexible;
} kafka_out;

void ko_init(kafka_out *o);
void ko_free(kafka_out *o);
void ko_i8(kafka_out *o, int8_t v);
void ko_i16(kafka_out *o, int16_t v);
void ko_i32(kafka_out *o, int32_t v);
void ko_i64(kafka_out *o, int64_t v);
void ko_f64(kafka_out *o, double v);
void ko_bool(kafka_out *o, bool v);
void ko_uvarint(kafka_out *o, uint32_t v);
void ko_uuid(kafka_out *o, const uint8_t v[16]);
void ko_string(kafka_out *o, const char *s); /* NULL: null */
void ko_string_nn(kafka_out *o, const char *s); /* a field that may not be null: NULL is "" */
void ko_set_flexible(kafka_out *o, int16_t key, int16_t v);
void ko_bytes(kafka_out *o, const void *p, int32_t n); /* n -1: null */
void ko_array(kafka_out *o, int32_t n);              /* n -1: null */
void ko_tags(kafka_out *o);                          /* no tagged fields */
/* A bytes field whose content is file ranges added right after with ko_file. */
void ko_bytes_len(kafka_out *o, int32_t n);
void ko_file(kafka_out *o, int fd, int64_t pos, int64_t len, void *ref);
/* Starts a response frame (size placeholder, correlation id, header tags) and finishes it
 * (patches the size). */
void ko_begin(kafka_out *o, int32_t correlation_id, int header_version);
void ko_end(kafka_out *o);

/* ---------------------------------------------------------------------------------------------
 * Requests
 */
#define KAFKA_MAX_FRAME (100 * 1024 * 1024) /* socket.request.max.bytes */

typedef struct kafka_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    const char *client_id;
    size_t body_off; /* where the body starts in the frame */
} kafka_header;

/*
 * Splits a frame off the input: 0 with *frame_len (including the 4-byte size) when a whole
 * frame is there, TD_EAGAIN if more bytes are needed, TD_ETOOBIG if the size is negative or
 * above max.
 */
int kafka_frame(const uint8_t *p, size_t n, size_t max, size_t *frame_len);
/* Decodes the request header of a frame body (after the size). The header's version depends on
 * whether (key, version) is flexible; for an unknown key, or a version above the range served,
 * it is read as v1 (what follows is not parsed: the request is refused). */
int kafka_decode_header(kafka_reader *r, kafka_header *h);

/* ApiVersions (key 18) v0-3. */
typedef struct kafka_api_versions_req {
    const char *client_software_name;    /* v3+ */
    const char *client_software_version; /* v3+ */
} kafka_api_versions_req;
int kafka_decode_api_versions(kafka_reader *r, int16_t v, kafka_api_versions_req *q);
/* Encodes the whole response body for version v with the given error code. */
void kafka_encode_api_versions(kafka_out *o, int16_t v, int16_t error_code);

/* Metadata (key 3) v0-12. */
typedef struct kafka_metadata_req {
    int32_t ntopics; /* -1: all topics (null array, v1+; or empty array in v0) */
    const char **topics; /* names (NULL when only an id was given) */
    uint8_t (*topic_ids)[16];
    bool allow_auto_topic_creation; /* v4+; true before */
    bool include_cluster_authorized_operations; /* v8-10 */
    bool include_topic_authorized_operations;   /* v8+ */
} kafka_metadata_req;
int kafka_decode_metadata(kafka_reader *r, int16_t v, kafka_metadata_req *q);

typedef struct kafka_metadata_partition {
    int16_t error_code;
    int32_t index;
    int32_t leader;
    int32_t leader_epoch;
} kafka_metadata_partition;

typedef struct kafka_metadata_topic {
    int16_t error_code;
    const char *name;
    uint8_t topic_id[16];
    int32_t npartitions;
    kafka_metadata_partition *partitions;
    int32_t authorized_ops; /* bits of td_acl_op; sent when the response's topic_ops is set */
    bool is_internal;       /* one of the broker's state topics (__consumer_offsets, ...) */
} kafka_metadata_topic;

/* A broker as Metadata and DescribeCluster list it. */
typedef struct kafka_broker {
    int32_t node_id;
    const char *host;
    int32_t port;
    const char *rack; /* NULL: none */
} kafka_broker;

typedef struct kafka_metadata_resp {
    int32_t node_id;
    const char *host;
    int32_t port;
    const char *cluster_id;
    /* The brokers listed and the controller; nbrokers 0: this one alone (node_id, host,
     * port), its own controller. */
    int32_t nbrokers;
    const kafka_broker *brokers;
    int32_t controller_id;
    int32_t ntopics;
    kafka_metadata_topic *topics;
    /* Authorized operations (KIP-430), when asked for: else INT32_MIN goes out, Kafka's "not
     * computed". */
    bool topic_ops, cluster_ops;
    int32_t cluster_authorized_ops;
} kafka_metadata_resp;
void kafka_encode_metadata(kafka_out *o, int16_t v, const kafka_metadata_resp *m);

/* Produce (key 0) v3-9. */
typedef struct kafka_produce_part {
    int32_t index;
    uint8_t *records; /* borrowed from the frame; the handler may modify it in place */
    int32_t records_len; /* -1: null */
} kafka_produce_part;

typedef struct kafka_produce_topic {
    const char *name;
    int32_t nparts;
    kafka_produce_part *parts;
} kafka_produce_topic;

typedef struct kafka_produce_req {
    const char *transactional_id;
    int16_t acks;
    int32_t timeout_ms;
    int32_t ntopics;
    kafka_produce_topic *topics;
} kafka_produce_req;
int kafka_decode_produce(kafka_reader *r, int16_t v, kafka_produce_req *q);

/* A record that failed a partition's batch (v8+, KIP-467): its index in its batch. */
typedef struct kafka_record_error {
    int32_t batch_index;
    const char *message;
} kafka_record_error;

typedef struct kafka_produce_part_resp {
    int32_t index;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time;
    int64_t log_start_offset;
    const kafka_record_error *record_errors; /* v8+ */
    int32_t nrecord_errors;
    const char *error_message;
} kafka_produce_part_resp;

typedef struct kafka_produce_topic_resp {
    const char *name;
    int32_t nparts;
    kafka_produce_part_resp *parts;
} kafka_produce_topic_resp;

typedef struct kafka_produce_resp {
    int32_t throttle_time_ms; /* v1+ */
    int32_t ntopics;
    kafka_produce_topic_resp *topics;
} kafka_produce_resp;
void kafka_encode_produce(kafka_out *o, int16_t v, const kafka_produce_resp *m);

/* Fetch (key 1) v4-17. */
typedef struct kafka_fetch_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+ */
    int64_t fetch_offset;
    int32_t last_fetched_epoch; /* v12+; -1 when absent */
    int64_t log_start_offset;   /* v5+ */
    int32_t max_bytes;
} kafka_fetch_part;

typedef struct kafka_fetch_topic {
    const char *name;       /* v4-12 */
    uint8_t topic_id[16];   /* v13+ */
    int32_t nparts;
    kafka_fetch_part *parts;
} kafka_fetch_topic;

typedef struct kafka_fetch_req {
    int32_t replica_id;    /* v4-14; v15+ in the ReplicaState tag; -1 for a consumer */
    int64_t replica_epoch; /* v15+ (ReplicaState); -1 when absent */
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;
    int8_t isolation_level;
    int32_t session_id;    /* v7+ */
    int32_t session_epoch; /* v7+ */
    int32_t ntopics;
    kafka_fetch_topic *topics;
} kafka_fetch_req;
int kafka_decode_fetch(kafka_reader *r, int16_t v, kafka_fetch_req *q);

typedef struct kafka_fetch_aborted {
    int64_t producer_id;
    int64_t first_offset;
} kafka_fetch_aborted;

typedef struct kafka_fetch_part_resp {
    int32_t partition;
    int16_t error_code;
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start_offset;
    int32_t naborted; /* aborted_transactions (v4+): -1 for null (read_uncommitted) */
    const kafka_fetch_aborted *aborted;
    /* records: a file range (fd >= 0), or memory, or none (len 0) */
    int fd;
    int64_t pos;
    int64_t len;
    void *ref;
    const uint8_t *mem;
    /* v12+ tagged fields, each written only when present. Absent is -1, not 0 (epoch 0 is a
     * valid epoch): whoever fills this struct sets them. */
    int32_t diverging_epoch;      /* DivergingEpoch (tag 0): epoch, or -1 */
    int64_t diverging_end_offset; /*   and its end offset */
    int32_t current_leader_id;    /* CurrentLeader (tag 1): leader id, or -1 */
    int32_t current_leader_epoch; /*   and its epoch */
} kafka_fetch_part_resp;

typedef struct kafka_fetch_topic_resp {
    const char *name;     /* v4-12 */
    uint8_t topic_id[16]; /* v13+ */
    int32_t nparts;
    kafka_fetch_part_resp *parts;
} kafka_fetch_topic_resp;

typedef struct kafka_fetch_resp {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;
    int32_t session_id;
    int32_t ntopics;
    kafka_fetch_topic_resp *topics;
} kafka_fetch_resp;
void kafka_encode_fetch(kafka_out *o, int16_t v, const kafka_fetch_resp *m);

/* ListOffsets (key 2) v0-7. */
typedef struct kafka_list_offsets_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v4+ */
    int64_t timestamp;            /* -1 latest, -2 earliest, -3 max timestamp (v7+) */
    int32_t max_num_offsets;      /* v0 */
    /* response */
    int16_t error_code;
    int64_t out_timestamp;
    int64_t out_offset;
} kafka_list_offsets_part;

typedef struct kafka_list_offsets_topic {
    const char *name;
    int32_t nparts;
    kafka_list_offsets_part *parts;
} kafka_list_offsets_topic;

typedef struct kafka_list_offsets_req {
    int32_t replica_id;
    int8_t isolation_level; /* v2+ */
    int32_t ntopics;
    kafka_list_offsets_topic *topics;
} kafka_list_offsets_req;
int kafka_decode_list_offsets(kafka_reader *r, int16_t v, kafka_list_offsets_req *q);
/* The response echoes the request's topics with the out_ fields filled in. */
void kafka_encode_list_offsets(kafka_out *o, int16_t v, const kafka_list_offsets_req *m);

/* Configuration entries, as CreateTopics, AlterConfigs and IncrementalAlterConfigs send them. */
typedef struct kafka_config {
    const char *name;
    const char *value; /* NULL: null */
    int8_t op;         /* IncrementalAlterConfigs: 0 set, 1 delete, 2 append, 3 subtract */
} kafka_config;

/* A manual replica assignment: the brokers of one partition. */
typedef struct kafka_replica_assignment {
    int32_t partition;
    int32_t nbrokers;
    int32_t *brokers;
} kafka_replica_assignment;

/* CreateTopics (key 19) v0-7. */
typedef struct kafka_create_topic {
    const char *name;
    int32_t num_partitions;     /* -1: the broker's default (v4+) */
    int16_t replication_factor; /* -1: the broker's default (v4+) */
    int32_t nassignments;
    kafka_replica_assignment *assignments;
    int32_t nconfigs;
    kafka_config *configs;
    /* response */
    int16_t error_code;
    const char *error_message;
    int32_t out_partitions;
    uint8_t topic_id[16];
    int32_t nout_configs; /* v5+: the topic's resulting configuration */
    kafka_config *out_configs;
} kafka_create_topic;

typedef struct kafka_create_topics_req {
    int32_t ntopics;
    kafka_create_topic *topics;
    int32_t timeout_ms;
    bool validate_only; /* v1+ */
} kafka_create_topics_req;
int kafka_decode_create_topics(kafka_reader *r, int16_t v, kafka_create_topics_req *q);
void kafka_encode_create_topics(kafka_out *o, int16_t v, const kafka_create_topics_req *m);

/* DeleteTopics (key 20) v0-6. */
typedef struct kafka_delete_topic {
    const char *name; /* NULL when given by id (v6+) */
    uint8_t topic_id[16];
    int16_t error_code;
    const char *error_message;
} kafka_delete_topic;

typedef struct kafka_delete_topics_req {
    int32_t ntopics;
    kafka_delete_topic *topics;
    int32_t timeout_ms;
} kafka_delete_topics_req;
int kafka_decode_delete_topics(kafka_reader *r, int16_t v, kafka_delete_topics_req *q);
void kafka_encode_delete_topics(kafka_out *o, int16_t v, const kafka_delete_topics_req *m);

/* CreatePartitions (key 37) v0-3. */
typedef struct kafka_create_partitions_topic {
    const char *name;
    int32_t count; /* the new total */
    int32_t nassignments; /* -1: null */
    int16_t error_code;
    const char *error_message;
} kafka_create_partitions_topic;

typedef struct kafka_create_partitions_req {
    int32_t ntopics;
    kafka_create_partitions_topic *topics;
    int32_t timeout_ms;
    bool validate_only;
} kafka_create_partitions_req;
int kafka_decode_create_partitions(kafka_reader *r, int16_t v, kafka_create_partitions_req *q);
void kafka_encode_create_partitions(kafka_out *o, int16_t v,
                                    const kafka_create_partitions_req *m);

/* Config resources of DescribeConfigs, AlterConfigs and IncrementalAlterConfigs. */
enum { KAFKA_RESOURCE_TOPIC = 2, KAFKA_RESOURCE_BROKER = 4, KAFKA_RESOURCE_BROKER_LOGGER = 8 };
/* Where a described value comes from (ConfigSource). */
enum {
    KAFKA_SOURCE_DYNAMIC_TOPIC = 1,
    KAFKA_SOURCE_STATIC_BROKER = 4,
    KAFKA_SOURCE_DEFAULT = 5,
};
/* ConfigType (DescribeConfigs v3+). */
enum {
    KAFKA_CONFIG_BOOLEAN = 1,
    KAFKA_CONFIG_STRING = 2,
    KAFKA_CONFIG_INT = 3,
    KAFKA_CONFIG_LONG = 5,
    KAFKA_CONFIG_LIST = 7,
};
/* IncrementalAlterConfigs operations. */
enum { KAFKA_OP_SET = 0, KAFKA_OP_DELETE = 1, KAFKA_OP_APPEND = 2, KAFKA_OP_SUBTRACT = 3 };

typedef struct kafka_config_desc {
    const char *name;
    const char *value; /* NULL: null */
    bool read_only;
    bool is_default; /* v0 */
    int8_t source;   /* v1+ */
    bool sensitive;
    int8_t type;     /* v3+ */
    const char *doc; /* v3+ */
} kafka_config_desc;

typedef struct kafka_config_resource {
    int8_t type; /* KAFKA_RESOURCE_* */
    const char *name;
    /* DescribeConfigs: the keys asked for (-1: all) */
    int32_t nkeys;
    const char **keys;
    /* AlterConfigs / IncrementalAlterConfigs: the changes */
    int32_t nconfigs;
    kafka_config *configs;
    /* response */
    int16_t error_code;
    const char *error_message;
    int32_t nout; /* DescribeConfigs */
    kafka_config_desc *out;
} kafka_config_resource;

/* DescribeConfigs (key 32) v0-4. */
typedef struct kafka_describe_configs_req {
    int32_t nresources;
    kafka_config_resource *resources;
    bool include_synonyms;      /* v1+ */
    bool include_documentation; /* v3+ */
} kafka_describe_configs_req;
int kafka_decode_describe_configs(kafka_reader *r, int16_t v, kafka_describe_configs_req *q);
void kafka_encode_describe_configs(kafka_out *o, int16_t v, const kafka_describe_configs_req *m);

/* AlterConfigs (key 33) v0-2 and IncrementalAlterConfigs (key 44) v0-1: the same request shape
 * (IncrementalAlterConfigs adds an operation per entry) and the same response. */
typedef struct kafka_alter_configs_req {
    int32_t nresources;
    kafka_config_resource *resources;
    bool validate_only;
} kafka_alter_configs_req;
int kafka_decode_alter_configs(kafka_reader *r, int16_t key, int16_t v,
                               kafka_alter_configs_req *q);
void kafka_encode_alter_configs(kafka_out *o, int16_t key, int16_t v,
                                const kafka_alter_configs_req *m);

/* DeleteRecords (key 21) v0-2. */
typedef struct kafka_delete_records_part {
    int32_t partition;
    int64_t offset; /* -1: the high watermark */
    int16_t error_code;
    int64_t low_watermark;
} kafka_delete_records_part;

typedef struct kafka_delete_records_topic {
    const char *name;
    int32_t nparts;
    kafka_delete_records_part *parts;
} kafka_delete_records_topic;

typedef struct kafka_delete_records_req {
    int32_t ntopics;
    kafka_delete_records_topic *topics;
    int32_t timeout_ms;
} kafka_delete_records_req;
int kafka_decode_delete_records(kafka_reader *r, int16_t v, kafka_delete_records_req *q);
void kafka_encode_delete_records(kafka_out *o, int16_t v, const kafka_delete_records_req *m);

/* InitProducerId (key 22) v0-4. */
typedef struct kafka_init_producer_id_req {
    const char *transactional_id; /* nullable: NULL for an idempotent producer */
    int32_t transaction_timeout_ms;
    int64_t producer_id; /* v3+; -1 when absent */
    int16_t producer_epoch;
} kafka_init_producer_id_req;
typedef struct kafka_init_producer_id_resp {
    int16_t error_code;
    int64_t producer_id;
    int16_t producer_epoch;
} kafka_init_producer_id_resp;
int kafka_decode_init_producer_id(kafka_reader *r, int16_t v, kafka_init_producer_id_req *q);
void kafka_encode_init_producer_id(kafka_out *o, int16_t v, const kafka_init_producer_id_resp *m);

/* DescribeCluster (key 60) v0-1. */
typedef struct kafka_describe_cluster_req {
    bool include_cluster_authorized_operations;
    int8_t endpoint_type; /* v1+: 1 brokers, 2 controllers */
} kafka_describe_cluster_req;
int kafka_decode_describe_cluster(kafka_reader *r, int16_t v, kafka_describe_cluster_req *q);
/* The response describes this one broker (m supplies node, host, port, cluster id). */
void kafka_encode_describe_cluster(kafka_out *o, int16_t v, const kafka_describe_cluster_req *q,
                                   const kafka_metadata_resp *m);

/* ---------------------------------------------------------------------------------------------
 * Consumer groups (msgs_group.c)
 */
enum { KAFKA_COORDINATOR_GROUP = 0, KAFKA_COORDINATOR_TRANSACTION = 1 };

/* FindCoordinator (key 10) v0-4. */
typedef struct kafka_coordinator {
    const char *key;
    int32_t node_id;
    const char *host;
    int32_t port;
    int16_t error_code;
    const char *error_message;
} kafka_coordinator;

typedef struct kafka_find_coordinator_req {
    int8_t key_type; /* v1+ */
    int32_t nkeys;   /* v0-3: one key */
    kafka_coordinator *keys; /* the key set; the rest is the response */
} kafka_find_coordinator_req;
int kafka_decode_find_coordinator(kafka_reader *r, int16_t v, kafka_find_coordinator_req *q);
void kafka_encode_find_coordinator(kafka_out *o, int16_t v, const kafka_find_coordinator_req *m);

/* JoinGroup (key 11) v0-9. */
typedef struct kafka_join_protocol {
    const char *name;
    const uint8_t *meta;
    int32_t len;
} kafka_join_protocol;

typedef struct kafka_join_group_req {
    const char *group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* v1+; v0: the session timeout */
    const char *member_id;
    const char *group_instance_id; /* v5+, nullable */
    const char *protocol_type;
    int32_t nprotocols;
    kafka_join_protocol *protocols;
    const char *reason; /* v8+ */
} kafka_join_group_req;
int kafka_decode_join_group(kafka_reader *r, int16_t v, kafka_join_group_req *q);

typedef struct kafka_group_member {
    const char *member_id;
    const char *group_instance_id; /* nullable */
    const char *client_id;         /* DescribeGroups */
    const char *client_host;       /* DescribeGroups */
    const void *meta;
    int32_t meta_len;
    const void *assignment;        /* DescribeGroups */
    int32_t assignment_len;
} kafka_group_member;

typedef struct kafka_join_group_resp {
    int16_t error_code;
    int32_t generation_id;
    const char *protocol_type; /* v7+, nullable */
    const char *protocol_name; /* nullable v7+ ("" before) */
    const char *leader;
    bool skip_assignment; /* v9+ */
    const char *member_id;
    int32_t nmembers;
    kafka_group_member *members;
} kafka_join_group_resp;
void kafka_encode_join_group(kafka_out *o, int16_t v, const kafka_join_group_resp *m);

/* SyncGroup (key 14) v0-5. */
typedef struct kafka_sync_assignment {
    const char *member_id;
    const uint8_t *data;
    int32_t len;
} kafka_sync_assignment;

typedef struct kafka_sync_group_req {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id; /* v3+ */
    const char *protocol_type;     /* v5+, nullable */
    const char *protocol_name;     /* v5+, nullable */
    int32_t nassignments;
    kafka_sync_assignment *assignments;
} kafka_sync_group_req;
int kafka_decode_sync_group(kafka_reader *r, int16_t v, kafka_sync_group_req *q);

typedef struct kafka_sync_group_resp {
    int16_t error_code;
    const char *protocol_type; /* v5+ */
    const char *protocol_name; /* v5+ */
    const void *assignment;
    int32_t len;
} kafka_sync_group_resp;
void kafka_encode_sync_group(kafka_out *o, int16_t v, const kafka_sync_group_resp *m);

/* Heartbeat (key 12) v0-4. */
typedef struct kafka_heartbeat_req {
    const char *group_id;
    int32_t generation_id;
    const char *member_id;
    const char *group_instance_id; /* v3+ */
} kafka_heartbeat_req;
int kafka_decode_heartbeat(kafka_reader *r, int16_t v, kafka_heartbeat_req *q);
/* Heartbeat's response is its error code (and throttle time). */
void kafka_encode_heartbeat(kafka_out *o, int16_t v, int16_t error_code);

/* LeaveGroup (key 13) v0-5. */
typedef struct kafka_leave_member {
    const char *member_id;
    const char *group_instance_id; /* nullable */
    const char *reason;            /* v5+ */
    int16_t error_code;
} kafka_leave_member;

typedef struct kafka_leave_group_req {
    const char *group_id;
    int32_t nmembers; /* v0-2: one member, from member_id */
    kafka_leave_member *members;
    int16_t error_code; /* response */
} kafka_leave_group_req;
int kafka_decode_leave_group(kafka_reader *r, int16_t v, kafka_leave_group_req *q);
void kafka_encode_leave_group(kafka_out *o, int16_t v, const kafka_leave_group_req *m);

/* OffsetCommit (key 8) v0-8. */
typedef struct kafka_offset_commit_part {
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch; /* v6+; -1 */
    const char *metadata; /* nullable */
    int16_t error_code;
} kafka_offset_commit_part;

typedef struct kafka_offset_commit_topic {
    const char *name;
    int32_t nparts;
    kafka_offset_commit_part *parts;
} kafka_offset_commit_topic;

typedef struct kafka_offset_commit_req {
    const char *group_id;
    int32_t generation_id; /* v1+; -1 */
    const char *member_id; /* v1+; "" */
    const char *group_instance_id; /* v7+ */
    int32_t ntopics;
    kafka_offset_commit_topic *topics;
} kafka_offset_commit_req;
int kafka_decode_offset_commit(kafka_reader *r, int16_t v, kafka_offset_commit_req *q);
void kafka_encode_offset_commit(kafka_out *o, int16_t v, const kafka_offset_commit_req *m);

/* OffsetFetch (key 9) v0-8: v0-7 ask for one group, v8 for several. */
typedef struct kafka_offset_fetch_part {
    int32_t partition;
    int64_t offset; /* -1: none committed */
    int32_t leader_epoch;
    const char *metadata;
    int16_t error_code;
} kafka_offset_fetch_part;

typedef struct kafka_offset_fetch_topic {
    const char *name;
    int32_t nparts;
    kafka_offset_fetch_part *parts;
} kafka_offset_fetch_topic;

typedef struct kafka_offset_fetch_group {
    const char *group_id;
    int32_t ntopics; /* -1: every committed partition (null array, v2+) */
    kafka_offset_fetch_topic *topics;
    int16_t error_code;
} kafka_offset_fetch_group;

typedef struct kafka_offset_fetch_req {
    int32_t ngroups;
    kafka_offset_fetch_group *groups;
    bool require_stable; /* v7+ */
} kafka_offset_fetch_req;
int kafka_decode_offset_fetch(kafka_reader *r, int16_t v, kafka_offset_fetch_req *q);
void kafka_encode_offset_fetch(kafka_out *o, int16_t v, const kafka_offset_fetch_req *m);

/* ListGroups (key 16) v0-4. */
typedef struct kafka_listed_group {
    const char *group_id;
    const char *protocol_type;
    const char *state; /* v4+ */
} kafka_listed_group;

typedef struct kafka_list_groups_req {
    int32_t nstates; /* v4+: a filter on states (0: all) */
    const char **states;
    int16_t error_code;
    int32_t ngroups;
    kafka_listed_group *groups;
} kafka_list_groups_req;
int kafka_decode_list_groups(kafka_reader *r, int16_t v, kafka_list_groups_req *q);
void kafka_encode_list_groups(kafka_out *o, int16_t v, const kafka_list_groups_req *m);

/* DescribeGroups (key 15) v0-5. */
typedef struct kafka_described_group {
    int16_t error_code;
    const char *group_id;
    const char *state;
    const char *protocol_type;
    const char *protocol_data;
    int32_t nmembers;
    kafka_group_member *members;
    int32_t authorized_ops; /* sent when include_authorized_operations (v3+) */
} kafka_described_group;

typedef struct kafka_describe_groups_req {
    int32_t ngroups;
    kafka_described_group *groups; /* group_id from the request; the rest is the response */
    bool include_authorized_operations; /* v3+ */
} kafka_describe_groups_req;
int kafka_decode_describe_groups(kafka_reader *r, int16_t v, kafka_describe_groups_req *q);
void kafka_encode_describe_groups(kafka_out *o, int16_t v, const kafka_describe_groups_req *m);

/* Client quotas (msgs_quota.c): an entity is a list of (type, name) pairs, name NULL for the
 * default. */
typedef struct kafka_quota_entity_part {
    const char *type; /* "user", "client-id", "ip" */
    const char *name; /* NULL: the default */
} kafka_quota_entity_part;

/* DescribeClientQuotas (key 48) v0-1. */
typedef struct kafka_quota_filter {
    const char *type;
    int8_t match_type; /* 0 exact name, 1 the default, 2 any name */
    const char *match;
} kafka_quota_filter;

typedef struct kafka_quota_value {
    const char *key;
    double value;
} kafka_quota_value;

typedef struct kafka_quota_entry {
    int32_t nparts;
    kafka_quota_entity_part *parts;
    int32_t nvalues;
    kafka_quota_value *values;
} kafka_quota_entry;

typedef struct kafka_describe_quotas_req {
    int32_t nfilters;
    kafka_quota_filter *filters;
    bool strict;
} kafka_describe_quotas_req;

typedef struct kafka_describe_quotas_resp {
    int16_t error_code;
    const char *error_message;
    int32_t nentries; /* -1: null (with an error) */
    kafka_quota_entry *entries;
} kafka_describe_quotas_resp;
int kafka_decode_describe_quotas(kafka_reader *r, int16_t v, kafka_describe_quotas_req *q);
void kafka_encode_describe_quotas(kafka_out *o, int16_t v, const kafka_describe_quotas_resp *m);

/* AlterClientQuotas (key 49) v0-1. */
typedef struct kafka_quota_alter_op {
    const char *key;
    double value;
    bool remove;
} kafka_quota_alter_op;

typedef struct kafka_quota_alter_entry {
    int32_t nparts;
    kafka_quota_entity_part *parts;
    int32_t nops;
    kafka_quota_alter_op *ops;
    int16_t error_code;        /* response */
    const char *error_message; /* response */
} kafka_quota_alter_entry;

typedef struct kafka_alter_quotas_req {
    int32_t nentries;
    kafka_quota_alter_entry *entries;
    bool validate_only;
} kafka_alter_quotas_req;
int kafka_decode_alter_quotas(kafka_reader *r, int16_t v, kafka_alter_quotas_req *q);
void kafka_encode_alter_quotas(kafka_out *o, int16_t v, const kafka_alter_quotas_req *m);

/* DeleteGroups (key 42) v0-2. */
typedef struct kafka_deleted_group {
    const char *group_id;
    int16_t error_code;
} kafka_deleted_group;

typedef struct kafka_delete_groups_req {
    int32_t ngroups;
    kafka_deleted_group *groups;
} kafka_delete_groups_req;
int kafka_decode_delete_groups(kafka_reader *r, int16_t v, kafka_delete_groups_req *q);
void kafka_encode_delete_groups(kafka_out *o, int16_t v, const kafka_delete_groups_req *m);

/* OffsetDelete (key 47) v0. */
typedef struct kafka_offset_delete_part {
    int32_t partition;
    int16_t error_code;
} kafka_offset_delete_part;

typedef struct kafka_offset_delete_topic {
    const char *name;
    int32_t nparts;
    kafka_offset_delete_part *parts;
} kafka_offset_delete_topic;

typedef struct kafka_offset_delete_req {
    const char *group_id;
    int32_t ntopics;
    kafka_offset_delete_topic *topics;
    int16_t error_code;
} kafka_offset_delete_req;
int kafka_decode_offset_delete(kafka_reader *r, int16_t v, kafka_offset_delete_req *q);
void kafka_encode_offset_delete(kafka_out *o, int16_t v, const kafka_offset_delete_req *m);

/*
 * The topics of a consumer's subscription (ConsumerProtocolSubscription, the JoinGroup metadata
 * of protocol type "consumer"): version int16, topics [string], ... Sets *topics to the names
 * (in the arena) and returns how many, or -1 if the bytes are not a subscription.
 */
int kafka_consumer_subscription_topics(const uint8_t *p, size_t n, td_arena *a,
                                       const char ***topics);

/* ---------------------------------------------------------------------------------------------
 * Transactions (msgs_txn.c): the transaction coordinator's APIs (KIP-98) and the admin APIs that
 * describe transactions and producers (KIP-664).
 */

/* A topic and a list of its partitions' indexes. */
typedef struct kafka_txn_topic {
    const char *name;
    int32_t nparts;
    int32_t *parts;
} kafka_txn_topic;

/* A topic's results: an error code per partition. */
typedef struct kafka_txn_part_result {
    int32_t partition;
    int16_t error_code;
} kafka_txn_part_result;

typedef struct kafka_txn_topic_result {
    const char *name;
    int32_t nparts;
    kafka_txn_part_result *parts;
} kafka_txn_topic_result;

/* AddPartitionsToTxn (key 24) v0-3 (v4+ is broker to broker). */
typedef struct kafka_add_partitions_to_txn_req {
    const char *transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t ntopics;
    kafka_txn_topic *topics;
} kafka_add_partitions_to_txn_req;

typedef struct kafka_add_partitions_to_txn_resp {
    int32_t ntopics;
    kafka_txn_topic_result *topics;
} kafka_add_partitions_to_txn_resp;
int kafka_decode_add_partitions_to_txn(kafka_reader *r, int16_t v,
                                       kafka_add_partitions_to_txn_req *q);
void kafka_encode_add_partitions_to_txn(kafka_out *o, int16_t v,
                                        const kafka_add_partitions_to_txn_resp *m);

/* AddOffsetsToTxn (key 25) v0-3. */
typedef struct kafka_add_offsets_to_txn_req {
    const char *transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    const char *group_id;
} kafka_add_offsets_to_txn_req;

typedef struct kafka_add_offsets_to_txn_resp {
    int16_t error_code;
} kafka_add_offsets_to_txn_resp;
int kafka_decode_add_offsets_to_txn(kafka_reader *r, int16_t v, kafka_add_offsets_to_txn_req *q);
void kafka_encode_add_offsets_to_txn(kafka_out *o, int16_t v,
                                     const kafka_add_offsets_to_txn_resp *m);

/* EndTxn (key 26) v0-3. */
typedef struct kafka_end_txn_req {
    const char *transactional_id;
    int64_t producer_id;
    int16_t producer_epoch;
    bool committed; /* false: abort */
} kafka_end_txn_req;

typedef struct kafka_end_txn_resp {
    int16_t error_code;
} kafka_end_txn_resp;
int kafka_decode_end_txn(kafka_reader *r, int16_t v, kafka_end_txn_req *q);
void kafka_encode_end_txn(kafka_out *o, int16_t v, const kafka_end_txn_resp *m);

/* TxnOffsetCommit (key 28) v0-3. The partitions are OffsetCommit's (their error_code is not
 * part of the request: the decoder leaves it 0). */
typedef struct kafka_txn_offset_commit_req {
    const char *transactional_id;
    const char *group_id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t generation_id;         /* v3+; -1 */
    const char *member_id;         /* v3+; "" */
    const char *group_instance_id; /* v3+, nullable; NULL */
    int32_t ntopics;
    kafka_offset_commit_topic *topics; /* leader_epoch: v2+, -1 before */
} kafka_txn_offset_commit_req;

typedef struct kafka_txn_offset_commit_resp {
    int32_t ntopics;
    kafka_txn_topic_result *topics;
} kafka_txn_offset_commit_resp;
int kafka_decode_txn_offset_commit(kafka_reader *r, int16_t v, kafka_txn_offset_commit_req *q);
void kafka_encode_txn_offset_commit(kafka_out *o, int16_t v, const kafka_txn_offset_commit_resp *m);

/* DescribeProducers (key 61) v0. */
typedef struct kafka_describe_producers_req {
    int32_t ntopics;
    kafka_txn_topic *topics;
} kafka_describe_producers_req;

typedef struct kafka_producer_state {
    int64_t producer_id;
    int32_t producer_epoch; /* int32 on the wire, unlike everywhere else */
    int32_t last_sequence;  /* -1: none */
    int64_t last_timestamp; /* -1: none */
    int32_t coordinator_epoch;
    int64_t current_txn_start_offset; /* -1: no transaction open */
} kafka_producer_state;

typedef struct kafka_describe_producers_part {
    int32_t partition;
    int16_t error_code;
    const char *error_message; /* nullable */
    int32_t nproducers;
    kafka_producer_state *producers;
} kafka_describe_producers_part;

typedef struct kafka_describe_producers_topic {
    const char *name;
    int32_t nparts;
    kafka_describe_producers_part *parts;
} kafka_describe_producers_topic;

typedef struct kafka_describe_producers_resp {
    int32_t ntopics;
    kafka_describe_producers_topic *topics;
} kafka_describe_producers_resp;
int kafka_decode_describe_producers(kafka_reader *r, int16_t v, kafka_describe_producers_req *q);
void kafka_encode_describe_producers(kafka_out *o, int16_t v,
                                     const kafka_describe_producers_resp *m);

/* DescribeTransactions (key 65) v0. */
typedef struct kafka_describe_transactions_req {
    int32_t nids;
    const char **ids;
} kafka_describe_transactions_req;

typedef struct kafka_described_txn {
    int16_t error_code;
    const char *transactional_id;
    const char *state; /* "Empty", "Ongoing", "PrepareCommit", ... */
    int32_t timeout_ms;
    int64_t start_time_ms; /* -1: no transaction open */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t ntopics;
    kafka_txn_topic *topics;
} kafka_described_txn;

typedef struct kafka_describe_transactions_resp {
    int32_t ntxns;
    kafka_described_txn *txns;
} kafka_describe_transactions_resp;
int kafka_decode_describe_transactions(kafka_reader *r, int16_t v,
                                       kafka_describe_transactions_req *q);
void kafka_encode_describe_transactions(kafka_out *o, int16_t v,
                                        const kafka_describe_transactions_resp *m);

/* ListTransactions (key 66) v0-1. */
typedef struct kafka_list_transactions_req {
    int32_t nstates; /* 0: any state */
    const char **states;
    int32_t nproducer_ids; /* 0: any producer */
    int64_t *producer_ids;
    int64_t duration_ms; /* v1+: only transactions open longer than this; -1: all */
} kafka_list_transactions_req;

typedef struct kafka_listed_txn {
    const char *transactional_id;
    int64_t producer_id;
    const char *state;
} kafka_listed_txn;

typedef struct kafka_list_transactions_resp {
    int16_t error_code;
    int32_t nunknown_states; /* the request's state filters that name no state */
    const char **unknown_states;
    int32_t ntxns;
    kafka_listed_txn *txns;
} kafka_list_transactions_resp;
int kafka_decode_list_transactions(kafka_reader *r, int16_t v, kafka_list_transactions_req *q);
void kafka_encode_list_transactions(kafka_out *o, int16_t v, const kafka_list_transactions_resp *m);

/* ---------------------------------------------------------------------------------------------
 * Handlers (handler.c): the protocol object the server listens with.
 */
struct td_engine;
struct net_proto;

typedef struct kafka_server_config {
    const char *advertised_host; /* the host Metadata names for this broker */
    int32_t port;                /* the port Metadata names */
    int32_t node_id;
    bool auto_create_topics;
    int32_t default_partitions;
    const char *cluster_id;
    const char *data_dir; /* named by DescribeConfigs (log.dirs) */
    struct td_coord *coord; /* the group coordinator (NULL: group APIs answer
                               COORDINATOR_NOT_AVAILABLE) */
    int32_t fault_drop_after_append; /* tests only: every Nth produce request that appended
                                        closes its connection instead of answering; 0 = off */
    /* kafka.sasl.mechanisms: the SASL mechanisms offered, comma-separated
     * ("SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"); NULL: all three */
    const char *sasl_mechanisms;
    /* connections.max.reauth.ms (KIP-368): a SASL session's lifetime; 0: unlimited */
    int64_t reauth_ms;
} kafka_server_config;

typedef struct kafka_server kafka_server;
int kafka_server_create(struct td_engine *e, const kafka_server_config *cfg, kafka_server **out);
/* Connects the server to the event loops it will run on (before they start). */
struct net_group;
int kafka_server_attach(kafka_server *s, struct net_group *g);
/* Stops waking the loops on appends (before the loops' leftover tasks run at shutdown). */
void kafka_server_detach(kafka_server *s);
void kafka_server_destroy(kafka_server *s);
void kafka_server_set_port(kafka_server *s, int32_t port);
/* In a cluster (before the loops start): Metadata and DescribeCluster list its brokers and
 * controller, and name its cluster id. */
struct td_cluster;
void kafka_server_set_cluster(kafka_server *s, struct td_cluster *cl);
/* What DescribeConfigs shows as listeners and advertised.listeners ("PLAINTEXT://h:p,..."; a
 * copy is kept). 0 or -ENOMEM. */
int kafka_server_set_listeners(kafka_server *s, const char *listeners);
const struct net_proto *kafka_server_proto(void);

/* ---------------------------------------------------------------------------------------------
 * Replication (client side): what a broker sends to another broker, as Kafka's replica fetcher
 * does, and decodes of its answers (msgs_replica.c). A request is framed the way responses are:
 * kafka_encode_request_header writes the size placeholder and the header, the body encoder
 * follows, and ko_end patches the size. A response frame's body (after the size) is read with
 * kafka_decode_response_header, then the body decoder. Decoders never trust a count: a
 * truncated or malformed message returns nonzero, and what they allocated is in the reader's
 * arena. Records are borrowed from the input, which must outlive the decoded struct.
 */
/* OffsetForLeaderEpoch: not served yet (no row in apis.c), so its key is here. */
enum { KAFKA_OFFSET_FOR_LEADER_EPOCH = 23 };

/* Whether a request of (key, version) is flexible, for a client: the table of APIs served
 * (apis.c) for the keys in it, at any version from their first flexible one, and this file's
 * own for the APIs a broker only sends. */
bool kafka_client_is_flexible(int16_t key, int16_t version);
/* Starts a request frame in an empty o: the size placeholder (ko_end patches it once the body
 * follows), then the request header: v2 (with tagged fields) for a flexible (key, version),
 * else v1. 0, or TD_EINVAL for a key whose flexible versions are not known. */
int kafka_encode_request_header(kafka_out *o, int16_t api_key, int16_t api_version,
                                int32_t correlation_id, const char *client_id);
/* Reads a response header (v1 with tagged fields for a flexible (key, version) but
 * ApiVersions, else v0) and leaves r at the body, in the body's encoding. 0 or TD_EPROTO. */
int kafka_decode_response_header(kafka_reader *r, int16_t api_key, int16_t api_version,
                                 int32_t *correlation_id);

/* Fetch v4-17 request, as a follower sends it: a full fetch (session 0, epoch -1, nothing
 * forgotten), rack "". q->session_id and session_epoch are written as they are. */
void kafka_encode_fetch_req(kafka_out *o, int16_t v, const kafka_fetch_req *q);
/* Fetch v4-17 response. Each partition's records are borrowed from the input (mem, len; fd -1;
 * null records: mem NULL, len 0); naborted -1 for a null list; the tags absent are -1.
 * TD_EPROTO for a malformed message or a version outside 4-17. */
int kafka_decode_fetch_resp(kafka_reader *r, int16_t v, kafka_fetch_resp *out);

/* Reads the tagged fields that end a struct, handing each one's payload to fn as a reader of
 * its own (flexible; fn returns nonzero to fail the read); unknown tags are skipped when fn
 * returns 0 without reading. Returns r->err. */
typedef int (*kafka_tag_fn)(kafka_reader *payload, uint32_t tag, void *arg);
int kr_tags_each(kafka_reader *r, kafka_tag_fn fn, void *arg);
/* The v12+ tagged fields of a Fetch response's partition (kafka_encode_fetch's). */
void kafka_encode_fetch_part_tags(kafka_out *o, const kafka_fetch_part_resp *p);
/* The top-level tagged fields of a Fetch request (v15+: ReplicaState, into q). */
void kafka_decode_fetch_req_tags(kafka_reader *r, int16_t v, kafka_fetch_req *q);

/* OffsetForLeaderEpoch (key 23) v0-4: the end offset of a leader epoch on the leader.
 *   request:  replica_id (v3+; -2 a debugging client, -1 a consumer),
 *             topics [topic, partitions [partition, current_leader_epoch (v2+), leader_epoch]]
 *   response: throttle_time_ms (v2+),
 *             topics [topic, partitions [error_code, partition, leader_epoch (v1+),
 *                     end_offset]]
 * Flexible from v4. Absent fields decode as their defaults (-1; replica_id -2). */
typedef struct kafka_leader_epoch_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v2+ */
    int32_t leader_epoch;
} kafka_leader_epoch_part;

typedef struct kafka_leader_epoch_topic {
    const char *name;
    int32_t nparts;
    kafka_leader_epoch_part *parts;
} kafka_leader_epoch_topic;

typedef struct kafka_leader_epoch_req {
    int32_t replica_id; /* v3+ */
    int32_t ntopics;
    kafka_leader_epoch_topic *topics;
} kafka_leader_epoch_req;

typedef struct kafka_leader_epoch_part_resp {
    int16_t error_code;
    int32_t partition;
    int32_t leader_epoch; /* v1+ */
    int64_t end_offset;
} kafka_leader_epoch_part_resp;

typedef struct kafka_leader_epoch_topic_resp {
    const char *name;
    int32_t nparts;
    kafka_leader_epoch_part_resp *parts;
} kafka_leader_epoch_topic_resp;

typedef struct kafka_leader_epoch_resp {
    int32_t throttle_time_ms; /* v2+ */
    int32_t ntopics;
    kafka_leader_epoch_topic_resp *topics;
} kafka_leader_epoch_resp;

void kafka_encode_offset_for_leader_epoch_req(kafka_out *o, int16_t v,
                                              const kafka_leader_epoch_req *q);
int kafka_decode_offset_for_leader_epoch_req(kafka_reader *r, int16_t v, kafka_leader_epoch_req *q);
void kafka_encode_offset_for_leader_epoch_resp(kafka_out *o, int16_t v,
                                               const kafka_leader_epoch_resp *m);
int kafka_decode_offset_for_leader_epoch_resp(kafka_reader *r, int16_t v,
                                              kafka_leader_epoch_resp *m);

#endif /* TD_PROTO_KAFKA_H */
