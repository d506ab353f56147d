// The Backendless event catalog (spec §1.2) as data: one row per event, sorted by id.
use super::{def, EventDef, Phase, Provider, NONE};

/// Every event of the Backendless catalog, sorted by id.
pub(super) static EVENTS: &[EventDef] = &[
    def(
        100,
        Provider::Persistence,
        Phase::Before,
        "beforeCreate",
        &["item"],
        101,
    ),
    def(
        101,
        Provider::Persistence,
        Phase::After,
        "afterCreate",
        &["item"],
        100,
    ),
    def(
        102,
        Provider::Persistence,
        Phase::Before,
        "beforeFindById",
        &["itemId", "relations"],
        103,
    ),
    def(
        103,
        Provider::Persistence,
        Phase::After,
        "afterFindById",
        &["itemId", "relations"],
        102,
    ),
    def(
        104,
        Provider::Persistence,
        Phase::Before,
        "beforeLoadRelations",
        &["itemId", "entityName", "relationName", "pageSize", "offset"],
        105,
    ),
    def(
        105,
        Provider::Persistence,
        Phase::After,
        "afterLoadRelations",
        &["itemId", "entityName", "relationName", "pageSize", "offset"],
        104,
    ),
    def(
        106,
        Provider::Persistence,
        Phase::Before,
        "beforeRemove",
        &["itemId"],
        107,
    ),
    def(
        107,
        Provider::Persistence,
        Phase::After,
        "afterRemove",
        &["itemId"],
        106,
    ),
    def(
        108,
        Provider::Persistence,
        Phase::Before,
        "beforeUpdate",
        &["item"],
        109,
    ),
    def(
        109,
        Provider::Persistence,
        Phase::After,
        "afterUpdate",
        &["item"],
        108,
    ),
    def(
        110,
        Provider::Persistence,
        Phase::Before,
        "beforeDescribe",
        &["itemName"],
        111,
    ),
    def(
        111,
        Provider::Persistence,
        Phase::After,
        "afterDescribe",
        &["itemName"],
        110,
    ),
    def(
        112,
        Provider::Persistence,
        Phase::Before,
        "beforeFind",
        &["query"],
        113,
    ),
    def(
        113,
        Provider::Persistence,
        Phase::After,
        "afterFind",
        &["query"],
        112,
    ),
    def(
        114,
        Provider::Persistence,
        Phase::Before,
        "beforeFirst",
        &["relations", "relationsDepth", "properties"],
        115,
    ),
    def(
        115,
        Provider::Persistence,
        Phase::After,
        "afterFirst",
        &["relations", "relationsDepth", "properties"],
        114,
    ),
    def(
        116,
        Provider::Persistence,
        Phase::Before,
        "beforeLast",
        &["relations", "relationsDepth", "properties"],
        117,
    ),
    def(
        117,
        Provider::Persistence,
        Phase::After,
        "afterLast",
        &["relations", "relationsDepth", "properties"],
        116,
    ),
    def(
        118,
        Provider::Persistence,
        Phase::Before,
        "beforeUpdateBulk",
        &["tableName", "whereClause", "changes"],
        119,
    ),
    def(
        119,
        Provider::Persistence,
        Phase::After,
        "afterUpdateBulk",
        &["tableName", "whereClause", "changes"],
        118,
    ),
    def(
        120,
        Provider::Persistence,
        Phase::Before,
        "beforeRemoveBulk",
        &["tableName", "whereClause"],
        121,
    ),
    def(
        121,
        Provider::Persistence,
        Phase::After,
        "afterRemoveBulk",
        &["tableName", "whereClause"],
        120,
    ),
    def(
        122,
        Provider::Persistence,
        Phase::Before,
        "beforeAddRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        123,
    ),
    def(
        123,
        Provider::Persistence,
        Phase::After,
        "afterAddRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        122,
    ),
    def(
        124,
        Provider::Persistence,
        Phase::Before,
        "beforeSetRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        125,
    ),
    def(
        125,
        Provider::Persistence,
        Phase::After,
        "afterSetRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        124,
    ),
    def(
        126,
        Provider::Persistence,
        Phase::Before,
        "beforeDeleteRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        127,
    ),
    def(
        127,
        Provider::Persistence,
        Phase::After,
        "afterDeleteRelation",
        &["columnName", "parentObjectId", "childrenArrayORWhereClause"],
        126,
    ),
    def(
        128,
        Provider::Persistence,
        Phase::Before,
        "beforeCount",
        &["query"],
        129,
    ),
    def(
        129,
        Provider::Persistence,
        Phase::After,
        "afterCount",
        &["query"],
        128,
    ),
    def(
        130,
        Provider::Persistence,
        Phase::Before,
        "beforeCreateBulk",
        &["items"],
        131,
    ),
    def(
        131,
        Provider::Persistence,
        Phase::After,
        "afterCreateBulk",
        &["items"],
        130,
    ),
    def(
        134,
        Provider::Persistence,
        Phase::Before,
        "beforeTransaction",
        &["unitOfWork"],
        135,
    ),
    def(
        135,
        Provider::Persistence,
        Phase::After,
        "afterTransaction",
        &["unitOfWork"],
        134,
    ),
    def(
        136,
        Provider::Persistence,
        Phase::Before,
        "beforeGroup",
        &["query"],
        137,
    ),
    def(
        137,
        Provider::Persistence,
        Phase::After,
        "afterGroup",
        &["query"],
        136,
    ),
    def(
        138,
        Provider::Persistence,
        Phase::Before,
        "beforeCountInGroup",
        &["query"],
        139,
    ),
    def(
        139,
        Provider::Persistence,
        Phase::After,
        "afterCountInGroup",
        &["query"],
        138,
    ),
    def(
        140,
        Provider::Persistence,
        Phase::Before,
        "beforeUpsert",
        &["item"],
        141,
    ),
    def(
        141,
        Provider::Persistence,
        Phase::After,
        "afterUpsert",
        &["item"],
        140,
    ),
    def(
        142,
        Provider::Persistence,
        Phase::Before,
        "beforeUpsertBulk",
        &["items"],
        143,
    ),
    def(
        143,
        Provider::Persistence,
        Phase::After,
        "afterUpsertBulk",
        &["items"],
        142,
    ),
    def(
        200,
        Provider::User,
        Phase::Before,
        "beforeLogin",
        &["login", "password"],
        201,
    ),
    def(
        201,
        Provider::User,
        Phase::After,
        "afterLogin",
        &["login", "password"],
        200,
    ),
    def(
        202,
        Provider::User,
        Phase::Before,
        "beforeRegister",
        &["user"],
        203,
    ),
    def(
        203,
        Provider::User,
        Phase::After,
        "afterRegister",
        &["user"],
        202,
    ),
    def(
        204,
        Provider::User,
        Phase::Before,
        "beforeUpdate",
        &["user"],
        205,
    ),
    def(
        205,
        Provider::User,
        Phase::After,
        "afterUpdate",
        &["user"],
        204,
    ),
    def(
        206,
        Provider::User,
        Phase::Before,
        "beforeRemove",
        &["userId"],
        207,
    ),
    def(
        207,
        Provider::User,
        Phase::After,
        "afterRemove",
        &["userId"],
        206,
    ),
    def(
        208,
        Provider::User,
        Phase::Before,
        "beforeDescribe",
        &[],
        209,
    ),
    def(209, Provider::User, Phase::After, "afterDescribe", &[], 208),
    def(
        210,
        Provider::User,
        Phase::Before,
        "beforeRestorePassword",
        &["email"],
        211,
    ),
    def(
        211,
        Provider::User,
        Phase::After,
        "afterRestorePassword",
        &["email"],
        210,
    ),
    def(212, Provider::User, Phase::Before, "beforeLogout", &[], 213),
    def(213, Provider::User, Phase::After, "afterLogout", &[], 212),
    def(
        214,
        Provider::User,
        Phase::Before,
        "beforeFind",
        &["query"],
        215,
    ),
    def(
        215,
        Provider::User,
        Phase::After,
        "afterFind",
        &["query"],
        214,
    ),
    def(
        216,
        Provider::User,
        Phase::Before,
        "beforeFindById",
        &["userId", "relations"],
        217,
    ),
    def(
        217,
        Provider::User,
        Phase::After,
        "afterFindById",
        &["userId", "relations"],
        216,
    ),
    def(
        218,
        Provider::User,
        Phase::Before,
        "beforeUpdateBulk",
        &["whereClause", "changes"],
        219,
    ),
    def(
        219,
        Provider::User,
        Phase::After,
        "afterUpdateBulk",
        &["whereClause", "changes"],
        218,
    ),
    def(
        220,
        Provider::User,
        Phase::Before,
        "beforeRemoveBulk",
        &["whereClause"],
        221,
    ),
    def(
        221,
        Provider::User,
        Phase::After,
        "afterRemoveBulk",
        &["whereClause"],
        220,
    ),
    def(
        222,
        Provider::User,
        Phase::Before,
        "beforeEmailConfirmed",
        &["confirmationKey"],
        223,
    ),
    def(
        223,
        Provider::User,
        Phase::After,
        "afterEmailConfirmed",
        &["confirmationKey"],
        222,
    ),
    def(
        224,
        Provider::User,
        Phase::Before,
        "beforeSocialLogin",
        &["userProperties", "socialType"],
        225,
    ),
    def(
        225,
        Provider::User,
        Phase::After,
        "afterSocialLogin",
        &["userProperties", "socialType"],
        224,
    ),
    def(
        226,
        Provider::User,
        Phase::Before,
        "beforeSocialRegister",
        &["userProperties", "socialType"],
        227,
    ),
    def(
        227,
        Provider::User,
        Phase::After,
        "afterSocialRegister",
        &["userProperties", "socialType"],
        226,
    ),
    def(
        228,
        Provider::User,
        Phase::Before,
        "beforeLoginAsGuest",
        &[],
        229,
    ),
    def(
        229,
        Provider::User,
        Phase::After,
        "afterLoginAsGuest",
        &[],
        228,
    ),
    def(
        230,
        Provider::User,
        Phase::Before,
        "beforeOAuthLogin",
        &["userProperties", "oauthProviderCode"],
        231,
    ),
    def(
        231,
        Provider::User,
        Phase::After,
        "afterOAuthLogin",
        &["userProperties", "oauthProviderCode"],
        230,
    ),
    def(
        232,
        Provider::User,
        Phase::Before,
        "beforeOAuthRegister",
        &["userProperties", "oauthProviderCode"],
        233,
    ),
    def(
        233,
        Provider::User,
        Phase::After,
        "afterOAuthRegister",
        &["userProperties", "oauthProviderCode"],
        232,
    ),
    def(
        234,
        Provider::User,
        Phase::Before,
        "beforeGroup",
        &["query"],
        235,
    ),
    def(
        235,
        Provider::User,
        Phase::After,
        "afterGroup",
        &["query"],
        234,
    ),
    def(236, Provider::User, Phase::Before, "beforeUpsert", &[], 237),
    def(237, Provider::User, Phase::After, "afterUpsert", &[], 236),
    def(
        402,
        Provider::Geo,
        Phase::Before,
        "beforeAddPoint",
        &["point"],
        403,
    ),
    def(
        403,
        Provider::Geo,
        Phase::After,
        "afterAddPoint",
        &["point"],
        402,
    ),
    def(
        404,
        Provider::Geo,
        Phase::Before,
        "beforeUpdatePoint",
        &["point"],
        405,
    ),
    def(
        405,
        Provider::Geo,
        Phase::After,
        "afterUpdatePoint",
        &["point"],
        404,
    ),
    def(
        406,
        Provider::Geo,
        Phase::Before,
        "beforeRemovePoint",
        &["pointId"],
        407,
    ),
    def(
        407,
        Provider::Geo,
        Phase::After,
        "afterRemovePoint",
        &["pointId"],
        406,
    ),
    def(
        408,
        Provider::Geo,
        Phase::Before,
        "beforeGetCategories",
        &[],
        409,
    ),
    def(
        409,
        Provider::Geo,
        Phase::After,
        "afterGetCategories",
        &[],
        408,
    ),
    def(
        410,
        Provider::Geo,
        Phase::Before,
        "beforeGetPoints",
        &["query"],
        411,
    ),
    def(
        411,
        Provider::Geo,
        Phase::After,
        "afterGetPoints",
        &["query"],
        410,
    ),
    def(
        412,
        Provider::Geo,
        Phase::Before,
        "beforeAddCategory",
        &["categoryName"],
        413,
    ),
    def(
        413,
        Provider::Geo,
        Phase::After,
        "afterAddCategory",
        &["categoryName"],
        412,
    ),
    def(
        414,
        Provider::Geo,
        Phase::Before,
        "beforeDeleteCategory",
        &["categoryName"],
        415,
    ),
    def(
        415,
        Provider::Geo,
        Phase::After,
        "afterDeleteCategory",
        &["categoryName"],
        414,
    ),
    def(
        416,
        Provider::Geo,
        Phase::Before,
        "beforeRelativeFind",
        &["query"],
        417,
    ),
    def(
        417,
        Provider::Geo,
        Phase::After,
        "afterRelativeFind",
        &["query"],
        416,
    ),
    def(
        500,
        Provider::Messaging,
        Phase::Before,
        "beforePublish",
        &["message", "publishOptions", "deliveryOptions"],
        501,
    ),
    def(
        501,
        Provider::Messaging,
        Phase::After,
        "afterPublish",
        &["message", "publishOptions", "deliveryOptions"],
        500,
    ),
    def(
        502,
        Provider::Messaging,
        Phase::Before,
        "beforeSubscribe",
        &["channel", "options"],
        503,
    ),
    def(
        503,
        Provider::Messaging,
        Phase::After,
        "afterSubscribe",
        &["channel", "options"],
        502,
    ),
    def(
        504,
        Provider::Messaging,
        Phase::Before,
        "beforeCancel",
        &["messageId"],
        505,
    ),
    def(
        505,
        Provider::Messaging,
        Phase::After,
        "afterCancel",
        &["messageId"],
        504,
    ),
    def(
        506,
        Provider::Messaging,
        Phase::Before,
        "beforePoll",
        &["messageId"],
        507,
    ),
    def(
        507,
        Provider::Messaging,
        Phase::After,
        "afterPoll",
        &["messageId"],
        506,
    ),
    def(
        508,
        Provider::Messaging,
        Phase::Before,
        "beforePush",
        &["templateDescription"],
        509,
    ),
    def(
        509,
        Provider::Messaging,
        Phase::After,
        "afterPush",
        &["templateDescription"],
        508,
    ),
    def(
        510,
        Provider::Messaging,
        Phase::Before,
        "beforePushWithTemplate",
        &["templateName"],
        511,
    ),
    def(
        511,
        Provider::Messaging,
        Phase::After,
        "afterPushWithTemplate",
        &["templateName"],
        510,
    ),
    def(
        512,
        Provider::Messaging,
        Phase::Before,
        "beforeDeviceRegistration",
        &["registration"],
        513,
    ),
    def(
        513,
        Provider::Messaging,
        Phase::After,
        "afterDeviceRegistration",
        &["registration"],
        512,
    ),
    def(
        514,
        Provider::Messaging,
        Phase::Before,
        "beforeSendEmail",
        &["subject", "bodyParts", "recipients", "attachments"],
        515,
    ),
    def(
        515,
        Provider::Messaging,
        Phase::After,
        "afterSendEmail",
        &["subject", "bodyParts", "recipients", "attachments"],
        514,
    ),
    def(
        516,
        Provider::Messaging,
        Phase::Before,
        "beforeGetMessageStatus",
        &["messageId"],
        517,
    ),
    def(
        517,
        Provider::Messaging,
        Phase::After,
        "afterGetMessageStatus",
        &["messageId"],
        516,
    ),
    def(
        518,
        Provider::Messaging,
        Phase::Before,
        "beforeSendEmailFromTemplate",
        &["templateName", "envelope", "templateValues"],
        519,
    ),
    def(
        519,
        Provider::Messaging,
        Phase::After,
        "afterSendEmailFromTemplate",
        &["templateName", "envelope", "templateValues"],
        518,
    ),
    def(
        600,
        Provider::File,
        Phase::Before,
        "beforeUpload",
        &["fileURL"],
        601,
    ),
    def(
        601,
        Provider::File,
        Phase::After,
        "afterUpload",
        &["fileURL"],
        600,
    ),
    def(
        602,
        Provider::File,
        Phase::Before,
        "beforeDeleteFileOrDirectory",
        &["fileURL", "pattern", "recursive"],
        603,
    ),
    def(
        603,
        Provider::File,
        Phase::After,
        "afterDeleteFileOrDirectory",
        &["fileURL", "pattern", "recursive"],
        602,
    ),
    def(
        604,
        Provider::File,
        Phase::Before,
        "beforeSaveFileFromByteArray",
        &["fileURL", "overwrite"],
        605,
    ),
    def(
        605,
        Provider::File,
        Phase::After,
        "afterSaveFileFromByteArray",
        &["fileURL", "overwrite"],
        604,
    ),
    def(
        606,
        Provider::File,
        Phase::Before,
        "beforeCopyFileOrDirectory",
        &["source", "target"],
        607,
    ),
    def(
        607,
        Provider::File,
        Phase::After,
        "afterCopyFileOrDirectory",
        &["source", "target"],
        606,
    ),
    def(
        608,
        Provider::File,
        Phase::Before,
        "beforeMoveFileOrDirectory",
        &["source", "target"],
        609,
    ),
    def(
        609,
        Provider::File,
        Phase::After,
        "afterMoveFileOrDirectory",
        &["source", "target"],
        608,
    ),
    def(
        610,
        Provider::File,
        Phase::Before,
        "beforeCount",
        &["path", "pattern", "recursive", "isCountDirectories"],
        611,
    ),
    def(
        611,
        Provider::File,
        Phase::After,
        "afterCount",
        &["path", "pattern", "recursive", "isCountDirectories"],
        610,
    ),
    def(
        612,
        Provider::File,
        Phase::Before,
        "beforeListing",
        &["path", "pattern", "recursive", "pageSize", "offset"],
        613,
    ),
    def(
        613,
        Provider::File,
        Phase::After,
        "afterListing",
        &["path", "pattern", "recursive", "pageSize", "offset"],
        612,
    ),
    def(
        614,
        Provider::File,
        Phase::Before,
        "beforeExists",
        &["path"],
        615,
    ),
    def(
        615,
        Provider::File,
        Phase::After,
        "afterExists",
        &["path"],
        614,
    ),
    def(
        618,
        Provider::File,
        Phase::Before,
        "beforeDownload",
        &["fileURL"],
        NONE,
    ),
    def(
        800,
        Provider::Timer,
        Phase::Standalone,
        "execute",
        &[],
        NONE,
    ),
    def(
        900,
        Provider::Custom,
        Phase::Standalone,
        "execute",
        &["args", "result"],
        NONE,
    ),
    def(
        1001,
        Provider::Cache,
        Phase::Before,
        "beforePut",
        &["key", "value", "ttl"],
        1002,
    ),
    def(
        1002,
        Provider::Cache,
        Phase::After,
        "afterPut",
        &["key", "value", "ttl"],
        1001,
    ),
    def(
        1003,
        Provider::Cache,
        Phase::Before,
        "beforeGet",
        &["key"],
        1004,
    ),
    def(
        1004,
        Provider::Cache,
        Phase::After,
        "afterGet",
        &["key"],
        1003,
    ),
    def(
        1005,
        Provider::Cache,
        Phase::Before,
        "beforeContains",
        &["key"],
        1006,
    ),
    def(
        1006,
        Provider::Cache,
        Phase::After,
        "afterContains",
        &["key"],
        1005,
    ),
    def(
        1007,
        Provider::Cache,
        Phase::Before,
        "beforeExpireAt",
        &["key", "expireAt"],
        1008,
    ),
    def(
        1008,
        Provider::Cache,
        Phase::After,
        "afterExpireAt",
        &["key", "expireAt"],
        1007,
    ),
    def(
        1009,
        Provider::Cache,
        Phase::Before,
        "beforeExpireIn",
        &["key", "expireIn"],
        1010,
    ),
    def(
        1010,
        Provider::Cache,
        Phase::After,
        "afterExpireIn",
        &["key", "expireIn"],
        1009,
    ),
    def(
        1011,
        Provider::Cache,
        Phase::Before,
        "beforeDelete",
        &["key"],
        1012,
    ),
    def(
        1012,
        Provider::Cache,
        Phase::After,
        "afterDelete",
        &["key"],
        1011,
    ),
    def(
        1201,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeReset",
        &["counterName"],
        1202,
    ),
    def(
        1202,
        Provider::AtomicOperation,
        Phase::After,
        "afterReset",
        &["counterName"],
        1201,
    ),
    def(
        1203,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeGetAndIncrement",
        &["counterName"],
        1204,
    ),
    def(
        1204,
        Provider::AtomicOperation,
        Phase::After,
        "afterGetAndIncrement",
        &["counterName"],
        1203,
    ),
    def(
        1205,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeIncrementAndGet",
        &["counterName"],
        1206,
    ),
    def(
        1206,
        Provider::AtomicOperation,
        Phase::After,
        "afterIncrementAndGet",
        &["counterName"],
        1205,
    ),
    def(
        1207,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeGetAndDecrement",
        &["counterName"],
        1208,
    ),
    def(
        1208,
        Provider::AtomicOperation,
        Phase::After,
        "afterGetAndDecrement",
        &["counterName"],
        1207,
    ),
    def(
        1209,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeDecrementAndGet",
        &["counterName"],
        1210,
    ),
    def(
        1210,
        Provider::AtomicOperation,
        Phase::After,
        "afterDecrementAndGet",
        &["counterName"],
        1209,
    ),
    def(
        1211,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeAddAndGet",
        &["counterName", "value"],
        1212,
    ),
    def(
        1212,
        Provider::AtomicOperation,
        Phase::After,
        "afterAddAndGet",
        &["counterName", "value"],
        1211,
    ),
    def(
        1213,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeGetAndAdd",
        &["counterName", "value"],
        1214,
    ),
    def(
        1214,
        Provider::AtomicOperation,
        Phase::After,
        "afterGetAndAdd",
        &["counterName", "value"],
        1213,
    ),
    def(
        1215,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeGet",
        &["counterName"],
        1216,
    ),
    def(
        1216,
        Provider::AtomicOperation,
        Phase::After,
        "afterGet",
        &["counterName"],
        1215,
    ),
    def(
        1217,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeCompareAndSet",
        &["counterName", "expected", "updated"],
        1218,
    ),
    def(
        1218,
        Provider::AtomicOperation,
        Phase::After,
        "afterCompareAndSet",
        &["counterName", "expected", "updated"],
        1217,
    ),
    def(
        1219,
        Provider::AtomicOperation,
        Phase::Before,
        "beforeList",
        &["pattern"],
        1220,
    ),
    def(
        1220,
        Provider::AtomicOperation,
        Phase::After,
        "afterList",
        &["pattern"],
        1219,
    ),
];

/// Event ids of the persistence (tables) provider.
pub mod persistence {
    use crate::event::EventId;
    /// `beforeCreate` (100).
    pub const BEFORE_CREATE: EventId = EventId(100);
    /// `afterCreate` (101).
    pub const AFTER_CREATE: EventId = EventId(101);
    /// `beforeFindById` (102).
    pub const BEFORE_FIND_BY_ID: EventId = EventId(102);
    /// `afterFindById` (103).
    pub const AFTER_FIND_BY_ID: EventId = EventId(103);
    /// `beforeLoadRelations` (104).
    pub const BEFORE_LOAD_RELATIONS: EventId = EventId(104);
    /// `afterLoadRelations` (105).
    pub const AFTER_LOAD_RELATIONS: EventId = EventId(105);
    /// `beforeRemove` (106).
    pub const BEFORE_REMOVE: EventId = EventId(106);
    /// `afterRemove` (107).
    pub const AFTER_REMOVE: EventId = EventId(107);
    /// `beforeUpdate` (108).
    pub const BEFORE_UPDATE: EventId = EventId(108);
    /// `afterUpdate` (109).
    pub const AFTER_UPDATE: EventId = EventId(109);
    /// `beforeDescribe` (110).
    pub const BEFORE_DESCRIBE: EventId = EventId(110);
    /// `afterDescribe` (111).
    pub const AFTER_DESCRIBE: EventId = EventId(111);
    /// `beforeFind` (112).
    pub const BEFORE_FIND: EventId = EventId(112);
    /// `afterFind` (113).
    pub const AFTER_FIND: EventId = EventId(113);
    /// `beforeFirst` (114).
    pub const BEFORE_FIRST: EventId = EventId(114);
    /// `afterFirst` (115).
    pub const AFTER_FIRST: EventId = EventId(115);
    /// `beforeLast` (116).
    pub const BEFORE_LAST: EventId = EventId(116);
    /// `afterLast` (117).
    pub const AFTER_LAST: EventId = EventId(117);
    /// `beforeUpdateBulk` (118).
    pub const BEFORE_UPDATE_BULK: EventId = EventId(118);
    /// `afterUpdateBulk` (119).
    pub const AFTER_UPDATE_BULK: EventId = EventId(119);
    /// `beforeRemoveBulk` (120).
    pub const BEFORE_REMOVE_BULK: EventId = EventId(120);
    /// `afterRemoveBulk` (121).
    pub const AFTER_REMOVE_BULK: EventId = EventId(121);
    /// `beforeAddRelation` (122).
    pub const BEFORE_ADD_RELATION: EventId = EventId(122);
    /// `afterAddRelation` (123).
    pub const AFTER_ADD_RELATION: EventId = EventId(123);
    /// `beforeSetRelation` (124).
    pub const BEFORE_SET_RELATION: EventId = EventId(124);
    /// `afterSetRelation` (125).
    pub const AFTER_SET_RELATION: EventId = EventId(125);
    /// `beforeDeleteRelation` (126).
    pub const BEFORE_DELETE_RELATION: EventId = EventId(126);
    /// `afterDeleteRelation` (127).
    pub const AFTER_DELETE_RELATION: EventId = EventId(127);
    /// `beforeCount` (128).
    pub const BEFORE_COUNT: EventId = EventId(128);
    /// `afterCount` (129).
    pub const AFTER_COUNT: EventId = EventId(129);
    /// `beforeCreateBulk` (130).
    pub const BEFORE_CREATE_BULK: EventId = EventId(130);
    /// `afterCreateBulk` (131).
    pub const AFTER_CREATE_BULK: EventId = EventId(131);
    /// `beforeTransaction` (134).
    pub const BEFORE_TRANSACTION: EventId = EventId(134);
    /// `afterTransaction` (135).
    pub const AFTER_TRANSACTION: EventId = EventId(135);
    /// `beforeGroup` (136).
    pub const BEFORE_GROUP: EventId = EventId(136);
    /// `afterGroup` (137).
    pub const AFTER_GROUP: EventId = EventId(137);
    /// `beforeCountInGroup` (138).
    pub const BEFORE_COUNT_IN_GROUP: EventId = EventId(138);
    /// `afterCountInGroup` (139).
    pub const AFTER_COUNT_IN_GROUP: EventId = EventId(139);
    /// `beforeUpsert` (140).
    pub const BEFORE_UPSERT: EventId = EventId(140);
    /// `afterUpsert` (141).
    pub const AFTER_UPSERT: EventId = EventId(141);
    /// `beforeUpsertBulk` (142).
    pub const BEFORE_UPSERT_BULK: EventId = EventId(142);
    /// `afterUpsertBulk` (143).
    pub const AFTER_UPSERT_BULK: EventId = EventId(143);
}

/// Event ids of the users provider.
pub mod user {
    use crate::event::EventId;
    /// `beforeLogin` (200).
    pub const BEFORE_LOGIN: EventId = EventId(200);
    /// `afterLogin` (201).
    pub const AFTER_LOGIN: EventId = EventId(201);
    /// `beforeRegister` (202).
    pub const BEFORE_REGISTER: EventId = EventId(202);
    /// `afterRegister` (203).
    pub const AFTER_REGISTER: EventId = EventId(203);
    /// `beforeUpdate` (204).
    pub const BEFORE_UPDATE: EventId = EventId(204);
    /// `afterUpdate` (205).
    pub const AFTER_UPDATE: EventId = EventId(205);
    /// `beforeRemove` (206).
    pub const BEFORE_REMOVE: EventId = EventId(206);
    /// `afterRemove` (207).
    pub const AFTER_REMOVE: EventId = EventId(207);
    /// `beforeDescribe` (208).
    pub const BEFORE_DESCRIBE: EventId = EventId(208);
    /// `afterDescribe` (209).
    pub const AFTER_DESCRIBE: EventId = EventId(209);
    /// `beforeRestorePassword` (210).
    pub const BEFORE_RESTORE_PASSWORD: EventId = EventId(210);
    /// `afterRestorePassword` (211).
    pub const AFTER_RESTORE_PASSWORD: EventId = EventId(211);
    /// `beforeLogout` (212).
    pub const BEFORE_LOGOUT: EventId = EventId(212);
    /// `afterLogout` (213).
    pub const AFTER_LOGOUT: EventId = EventId(213);
    /// `beforeFind` (214).
    pub const BEFORE_FIND: EventId = EventId(214);
    /// `afterFind` (215).
    pub const AFTER_FIND: EventId = EventId(215);
    /// `beforeFindById` (216).
    pub const BEFORE_FIND_BY_ID: EventId = EventId(216);
    /// `afterFindById` (217).
    pub const AFTER_FIND_BY_ID: EventId = EventId(217);
    /// `beforeUpdateBulk` (218).
    pub const BEFORE_UPDATE_BULK: EventId = EventId(218);
    /// `afterUpdateBulk` (219).
    pub const AFTER_UPDATE_BULK: EventId = EventId(219);
    /// `beforeRemoveBulk` (220).
    pub const BEFORE_REMOVE_BULK: EventId = EventId(220);
    /// `afterRemoveBulk` (221).
    pub const AFTER_REMOVE_BULK: EventId = EventId(221);
    /// `beforeEmailConfirmed` (222).
    pub const BEFORE_EMAIL_CONFIRMED: EventId = EventId(222);
    /// `afterEmailConfirmed` (223).
    pub const AFTER_EMAIL_CONFIRMED: EventId = EventId(223);
    /// `beforeSocialLogin` (224).
    pub const BEFORE_SOCIAL_LOGIN: EventId = EventId(224);
    /// `afterSocialLogin` (225).
    pub const AFTER_SOCIAL_LOGIN: EventId = EventId(225);
    /// `beforeSocialRegister` (226).
    pub const BEFORE_SOCIAL_REGISTER: EventId = EventId(226);
    /// `afterSocialRegister` (227).
    pub const AFTER_SOCIAL_REGISTER: EventId = EventId(227);
    /// `beforeLoginAsGuest` (228).
    pub const BEFORE_LOGIN_AS_GUEST: EventId = EventId(228);
    /// `afterLoginAsGuest` (229).
    pub const AFTER_LOGIN_AS_GUEST: EventId = EventId(229);
    /// `beforeOAuthLogin` (230).
    pub const BEFORE_O_AUTH_LOGIN: EventId = EventId(230);
    /// `afterOAuthLogin` (231).
    pub const AFTER_O_AUTH_LOGIN: EventId = EventId(231);
    /// `beforeOAuthRegister` (232).
    pub const BEFORE_O_AUTH_REGISTER: EventId = EventId(232);
    /// `afterOAuthRegister` (233).
    pub const AFTER_O_AUTH_REGISTER: EventId = EventId(233);
    /// `beforeGroup` (234).
    pub const BEFORE_GROUP: EventId = EventId(234);
    /// `afterGroup` (235).
    pub const AFTER_GROUP: EventId = EventId(235);
    /// `beforeUpsert` (236).
    pub const BEFORE_UPSERT: EventId = EventId(236);
    /// `afterUpsert` (237).
    pub const AFTER_UPSERT: EventId = EventId(237);
}

/// Event ids of the geo (deprecated) provider.
pub mod geo {
    use crate::event::EventId;
    /// `beforeAddPoint` (402).
    pub const BEFORE_ADD_POINT: EventId = EventId(402);
    /// `afterAddPoint` (403).
    pub const AFTER_ADD_POINT: EventId = EventId(403);
    /// `beforeUpdatePoint` (404).
    pub const BEFORE_UPDATE_POINT: EventId = EventId(404);
    /// `afterUpdatePoint` (405).
    pub const AFTER_UPDATE_POINT: EventId = EventId(405);
    /// `beforeRemovePoint` (406).
    pub const BEFORE_REMOVE_POINT: EventId = EventId(406);
    /// `afterRemovePoint` (407).
    pub const AFTER_REMOVE_POINT: EventId = EventId(407);
    /// `beforeGetCategories` (408).
    pub const BEFORE_GET_CATEGORIES: EventId = EventId(408);
    /// `afterGetCategories` (409).
    pub const AFTER_GET_CATEGORIES: EventId = EventId(409);
    /// `beforeGetPoints` (410).
    pub const BEFORE_GET_POINTS: EventId = EventId(410);
    /// `afterGetPoints` (411).
    pub const AFTER_GET_POINTS: EventId = EventId(411);
    /// `beforeAddCategory` (412).
    pub const BEFORE_ADD_CATEGORY: EventId = EventId(412);
    /// `afterAddCategory` (413).
    pub const AFTER_ADD_CATEGORY: EventId = EventId(413);
    /// `beforeDeleteCategory` (414).
    pub const BEFORE_DELETE_CATEGORY: EventId = EventId(414);
    /// `afterDeleteCategory` (415).
    pub const AFTER_DELETE_CATEGORY: EventId = EventId(415);
    /// `beforeRelativeFind` (416).
    pub const BEFORE_RELATIVE_FIND: EventId = EventId(416);
    /// `afterRelativeFind` (417).
    pub const AFTER_RELATIVE_FIND: EventId = EventId(417);
}

/// Event ids of the messaging provider.
pub mod messaging {
    use crate::event::EventId;
    /// `beforePublish` (500).
    pub const BEFORE_PUBLISH: EventId = EventId(500);
    /// `afterPublish` (501).
    pub const AFTER_PUBLISH: EventId = EventId(501);
    /// `beforeSubscribe` (502).
    pub const BEFORE_SUBSCRIBE: EventId = EventId(502);
    /// `afterSubscribe` (503).
    pub const AFTER_SUBSCRIBE: EventId = EventId(503);
    /// `beforeCancel` (504).
    pub const BEFORE_CANCEL: EventId = EventId(504);
    /// `afterCancel` (505).
    pub const AFTER_CANCEL: EventId = EventId(505);
    /// `beforePoll` (506).
    pub const BEFORE_POLL: EventId = EventId(506);
    /// `afterPoll` (507).
    pub const AFTER_POLL: EventId = EventId(507);
    /// `beforePush` (508).
    pub const BEFORE_PUSH: EventId = EventId(508);
    /// `afterPush` (509).
    pub const AFTER_PUSH: EventId = EventId(509);
    /// `beforePushWithTemplate` (510).
    pub const BEFORE_PUSH_WITH_TEMPLATE: EventId = EventId(510);
    /// `afterPushWithTemplate` (511).
    pub const AFTER_PUSH_WITH_TEMPLATE: EventId = EventId(511);
    /// `beforeDeviceRegistration` (512).
    pub const BEFORE_DEVICE_REGISTRATION: EventId = EventId(512);
    /// `afterDeviceRegistration` (513).
    pub const AFTER_DEVICE_REGISTRATION: EventId = EventId(513);
    /// `beforeSendEmail` (514).
    pub const BEFORE_SEND_EMAIL: EventId = EventId(514);
    /// `afterSendEmail` (515).
    pub const AFTER_SEND_EMAIL: EventId = EventId(515);
    /// `beforeGetMessageStatus` (516).
    pub const BEFORE_GET_MESSAGE_STATUS: EventId = EventId(516);
    /// `afterGetMessageStatus` (517).
    pub const AFTER_GET_MESSAGE_STATUS: EventId = EventId(517);
    /// `beforeSendEmailFromTemplate` (518).
    pub const BEFORE_SEND_EMAIL_FROM_TEMPLATE: EventId = EventId(518);
    /// `afterSendEmailFromTemplate` (519).
    pub const AFTER_SEND_EMAIL_FROM_TEMPLATE: EventId = EventId(519);
}

/// Event ids of the files provider.
pub mod file {
    use crate::event::EventId;
    /// `beforeUpload` (600).
    pub const BEFORE_UPLOAD: EventId = EventId(600);
    /// `afterUpload` (601).
    pub const AFTER_UPLOAD: EventId = EventId(601);
    /// `beforeDeleteFileOrDirectory` (602).
    pub const BEFORE_DELETE_FILE_OR_DIRECTORY: EventId = EventId(602);
    /// `afterDeleteFileOrDirectory` (603).
    pub const AFTER_DELETE_FILE_OR_DIRECTORY: EventId = EventId(603);
    /// `beforeSaveFileFromByteArray` (604).
    pub const BEFORE_SAVE_FILE_FROM_BYTE_ARRAY: EventId = EventId(604);
    /// `afterSaveFileFromByteArray` (605).
    pub const AFTER_SAVE_FILE_FROM_BYTE_ARRAY: EventId = EventId(605);
    /// `beforeCopyFileOrDirectory` (606).
    pub const BEFORE_COPY_FILE_OR_DIRECTORY: EventId = EventId(606);
    /// `afterCopyFileOrDirectory` (607).
    pub const AFTER_COPY_FILE_OR_DIRECTORY: EventId = EventId(607);
    /// `beforeMoveFileOrDirectory` (608).
    pub const BEFORE_MOVE_FILE_OR_DIRECTORY: EventId = EventId(608);
    /// `afterMoveFileOrDirectory` (609).
    pub const AFTER_MOVE_FILE_OR_DIRECTORY: EventId = EventId(609);
    /// `beforeCount` (610).
    pub const BEFORE_COUNT: EventId = EventId(610);
    /// `afterCount` (611).
    pub const AFTER_COUNT: EventId = EventId(611);
    /// `beforeListing` (612).
    pub const BEFORE_LISTING: EventId = EventId(612);
    /// `afterListing` (613).
    pub const AFTER_LISTING: EventId = EventId(613);
    /// `beforeExists` (614).
    pub const BEFORE_EXISTS: EventId = EventId(614);
    /// `afterExists` (615).
    pub const AFTER_EXISTS: EventId = EventId(615);
    /// `beforeDownload` (618).
    pub const BEFORE_DOWNLOAD: EventId = EventId(618);
}

/// Event ids of the cache provider.
pub mod cache {
    use crate::event::EventId;
    /// `beforePut` (1001).
    pub const BEFORE_PUT: EventId = EventId(1001);
    /// `afterPut` (1002).
    pub const AFTER_PUT: EventId = EventId(1002);
    /// `beforeGet` (1003).
    pub const BEFORE_GET: EventId = EventId(1003);
    /// `afterGet` (1004).
    pub const AFTER_GET: EventId = EventId(1004);
    /// `beforeContains` (1005).
    pub const BEFORE_CONTAINS: EventId = EventId(1005);
    /// `afterContains` (1006).
    pub const AFTER_CONTAINS: EventId = EventId(1006);
    /// `beforeExpireAt` (1007).
    pub const BEFORE_EXPIRE_AT: EventId = EventId(1007);
    /// `afterExpireAt` (1008).
    pub const AFTER_EXPIRE_AT: EventId = EventId(1008);
    /// `beforeExpireIn` (1009).
    pub const BEFORE_EXPIRE_IN: EventId = EventId(1009);
    /// `afterExpireIn` (1010).
    pub const AFTER_EXPIRE_IN: EventId = EventId(1010);
    /// `beforeDelete` (1011).
    pub const BEFORE_DELETE: EventId = EventId(1011);
    /// `afterDelete` (1012).
    pub const AFTER_DELETE: EventId = EventId(1012);
}

/// Event ids of the atomic counters provider.
pub mod atomic_operation {
    use crate::event::EventId;
    /// `beforeReset` (1201).
    pub const BEFORE_RESET: EventId = EventId(1201);
    /// `afterReset` (1202).
    pub const AFTER_RESET: EventId = EventId(1202);
    /// `beforeGetAndIncrement` (1203).
    pub const BEFORE_GET_AND_INCREMENT: EventId = EventId(1203);
    /// `afterGetAndIncrement` (1204).
    pub const AFTER_GET_AND_INCREMENT: EventId = EventId(1204);
    /// `beforeIncrementAndGet` (1205).
    pub const BEFORE_INCREMENT_AND_GET: EventId = EventId(1205);
    /// `afterIncrementAndGet` (1206).
    pub const AFTER_INCREMENT_AND_GET: EventId = EventId(1206);
    /// `beforeGetAndDecrement` (1207).
    pub const BEFORE_GET_AND_DECREMENT: EventId = EventId(1207);
    /// `afterGetAndDecrement` (1208).
    pub const AFTER_GET_AND_DECREMENT: EventId = EventId(1208);
    /// `beforeDecrementAndGet` (1209).
    pub const BEFORE_DECREMENT_AND_GET: EventId = EventId(1209);
    /// `afterDecrementAndGet` (1210).
    pub const AFTER_DECREMENT_AND_GET: EventId = EventId(1210);
    /// `beforeAddAndGet` (1211).
    pub const BEFORE_ADD_AND_GET: EventId = EventId(1211);
    /// `afterAddAndGet` (1212).
    pub const AFTER_ADD_AND_GET: EventId = EventId(1212);
    /// `beforeGetAndAdd` (1213).
    pub const BEFORE_GET_AND_ADD: EventId = EventId(1213);
    /// `afterGetAndAdd` (1214).
    pub const AFTER_GET_AND_ADD: EventId = EventId(1214);
    /// `beforeGet` (1215).
    pub const BEFORE_GET: EventId = EventId(1215);
    /// `afterGet` (1216).
    pub const AFTER_GET: EventId = EventId(1216);
    /// `beforeCompareAndSet` (1217).
    pub const BEFORE_COMPARE_AND_SET: EventId = EventId(1217);
    /// `afterCompareAndSet` (1218).
    pub const AFTER_COMPARE_AND_SET: EventId = EventId(1218);
    /// `beforeList` (1219).
    pub const BEFORE_LIST: EventId = EventId(1219);
    /// `afterList` (1220).
    pub const AFTER_LIST: EventId = EventId(1220);
}

/// Event ids of the timers provider.
pub mod timer {
    use crate::event::EventId;
    /// `execute` (800).
    pub const EXECUTE: EventId = EventId(800);
}

/// Event ids of the custom events provider.
pub mod custom {
    use crate::event::EventId;
    /// `execute` (900).
    pub const EXECUTE: EventId = EventId(900);
}
