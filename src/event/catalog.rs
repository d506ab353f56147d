//! The Backendless event catalog (spec §1.2), written once as data.
//!
//! The one `catalog!` table below generates both [`EVENTS`], the rows that
//! [`EventDef::by_id`](super::EventDef::by_id) and friends search, and the
//! public per-provider modules of id constants (`persistence::BEFORE_CREATE`),
//! so an id, its constant and its name cannot disagree.
//!
//! A row is one of:
//!
//! - `100 BEFORE_CREATE beforeCreate (item) / 101 AFTER_CREATE afterCreate;`:
//!   a before/after pair sharing its arguments; the after-event also receives
//!   a final `result`;
//! - `618 BEFORE_DOWNLOAD beforeDownload (fileURL) [Before];`: an event
//!   without a pair, with its phase;
//! - `900 EXECUTE execute (args) [Standalone, result];`: the same, for an
//!   event whose wire arguments end with a `result` although it is not an
//!   after-event.
//!
//! The argument lists name the arguments after the RunnerContext, in wire
//! order, without the `result`.

use super::{EventDef, EventId, Phase, Provider};

macro_rules! catalog {
    // A row without a phase is the before-half of a pair.
    (@phase) => { Phase::Before };
    (@phase $phase:ident) => { Phase::$phase };
    (@args ($($arg:ident),*)) => { &[$(stringify!($arg)),*] };
    (@result) => { false };
    (@result result) => { true };
    (@pair) => { None };
    (@pair $after_id:literal) => { Some(EventId($after_id)) };
    ($(
        $(#[$module_doc:meta])*
        $module:ident: $provider:ident {
            $(
                $id:literal $konst:ident $name:ident $args:tt
                $(/ $after_id:literal $after_konst:ident $after_name:ident)?
                $([$phase:ident $(, $result:ident)?])?;
            )*
        }
    )*) => {
        /// Every event of the Backendless catalog, sorted by id.
        pub(super) static EVENTS: &[EventDef] = &[$($(
            EventDef {
                id: EventId($id),
                provider: Provider::$provider,
                phase: catalog!(@phase $($phase)?),
                name: stringify!($name),
                args: catalog!(@args $args),
                result: catalog!(@result $($($result)?)?),
                pair: catalog!(@pair $($after_id)?),
            },
            $(EventDef {
                id: EventId($after_id),
                provider: Provider::$provider,
                phase: Phase::After,
                name: stringify!($after_name),
                args: catalog!(@args $args),
                result: true,
                pair: Some(EventId($id)),
            },)?
        )*)*];

        $(
            $(#[$module_doc])*
            pub mod $module {
                use crate::event::EventId;
                $(
                    #[doc = concat!("`", stringify!($name), "` (", stringify!($id), ").")]
                    pub const $konst: EventId = EventId($id);
                    $(
                        #[doc = concat!(
                            "`", stringify!($after_name), "` (", stringify!($after_id), ")."
                        )]
                        pub const $after_konst: EventId = EventId($after_id);
                    )?
                )*
            }
        )*

        /// Every public id constant as (module, constant, id), to check them
        /// against the rows.
        #[cfg(test)]
        pub(super) static CONSTANTS: &[(&str, &str, EventId)] = &[$($(
            (stringify!($module), stringify!($konst), $module::$konst),
            $((stringify!($module), stringify!($after_konst), $module::$after_konst),)?
        )*)*];
    };
}

catalog! {
    /// Event ids of the persistence (tables) provider.
    persistence: Persistence {
        100 BEFORE_CREATE beforeCreate (item) / 101 AFTER_CREATE afterCreate;
        102 BEFORE_FIND_BY_ID beforeFindById (itemId, relations) / 103 AFTER_FIND_BY_ID afterFindById;
        104 BEFORE_LOAD_RELATIONS beforeLoadRelations (itemId, entityName, relationName, pageSize, offset) / 105 AFTER_LOAD_RELATIONS afterLoadRelations;
        106 BEFORE_REMOVE beforeRemove (itemId) / 107 AFTER_REMOVE afterRemove;
        108 BEFORE_UPDATE beforeUpdate (item) / 109 AFTER_UPDATE afterUpdate;
        110 BEFORE_DESCRIBE beforeDescribe (itemName) / 111 AFTER_DESCRIBE afterDescribe;
        112 BEFORE_FIND beforeFind (query) / 113 AFTER_FIND afterFind;
        114 BEFORE_FIRST beforeFirst (relations, relationsDepth, properties) / 115 AFTER_FIRST afterFirst;
        116 BEFORE_LAST beforeLast (relations, relationsDepth, properties) / 117 AFTER_LAST afterLast;
        118 BEFORE_UPDATE_BULK beforeUpdateBulk (tableName, whereClause, changes) / 119 AFTER_UPDATE_BULK afterUpdateBulk;
        120 BEFORE_REMOVE_BULK beforeRemoveBulk (tableName, whereClause) / 121 AFTER_REMOVE_BULK afterRemoveBulk;
        122 BEFORE_ADD_RELATION beforeAddRelation (columnName, parentObjectId, childrenArrayORWhereClause) / 123 AFTER_ADD_RELATION afterAddRelation;
        124 BEFORE_SET_RELATION beforeSetRelation (columnName, parentObjectId, childrenArrayORWhereClause) / 125 AFTER_SET_RELATION afterSetRelation;
        126 BEFORE_DELETE_RELATION beforeDeleteRelation (columnName, parentObjectId, childrenArrayORWhereClause) / 127 AFTER_DELETE_RELATION afterDeleteRelation;
        128 BEFORE_COUNT beforeCount (query) / 129 AFTER_COUNT afterCount;
        130 BEFORE_CREATE_BULK beforeCreateBulk (items) / 131 AFTER_CREATE_BULK afterCreateBulk;
        134 BEFORE_TRANSACTION beforeTransaction (unitOfWork) / 135 AFTER_TRANSACTION afterTransaction;
        136 BEFORE_GROUP beforeGroup (query) / 137 AFTER_GROUP afterGroup;
        138 BEFORE_COUNT_IN_GROUP beforeCountInGroup (query) / 139 AFTER_COUNT_IN_GROUP afterCountInGroup;
        140 BEFORE_UPSERT beforeUpsert (item) / 141 AFTER_UPSERT afterUpsert;
        142 BEFORE_UPSERT_BULK beforeUpsertBulk (items) / 143 AFTER_UPSERT_BULK afterUpsertBulk;
    }
    /// Event ids of the users provider.
    user: User {
        200 BEFORE_LOGIN beforeLogin (login, password) / 201 AFTER_LOGIN afterLogin;
        202 BEFORE_REGISTER beforeRegister (user) / 203 AFTER_REGISTER afterRegister;
        204 BEFORE_UPDATE beforeUpdate (user) / 205 AFTER_UPDATE afterUpdate;
        206 BEFORE_REMOVE beforeRemove (userId) / 207 AFTER_REMOVE afterRemove;
        208 BEFORE_DESCRIBE beforeDescribe () / 209 AFTER_DESCRIBE afterDescribe;
        210 BEFORE_RESTORE_PASSWORD beforeRestorePassword (email) / 211 AFTER_RESTORE_PASSWORD afterRestorePassword;
        212 BEFORE_LOGOUT beforeLogout () / 213 AFTER_LOGOUT afterLogout;
        214 BEFORE_FIND beforeFind (query) / 215 AFTER_FIND afterFind;
        216 BEFORE_FIND_BY_ID beforeFindById (userId, relations) / 217 AFTER_FIND_BY_ID afterFindById;
        218 BEFORE_UPDATE_BULK beforeUpdateBulk (whereClause, changes) / 219 AFTER_UPDATE_BULK afterUpdateBulk;
        220 BEFORE_REMOVE_BULK beforeRemoveBulk (whereClause) / 221 AFTER_REMOVE_BULK afterRemoveBulk;
        222 BEFORE_EMAIL_CONFIRMED beforeEmailConfirmed (confirmationKey) / 223 AFTER_EMAIL_CONFIRMED afterEmailConfirmed;
        224 BEFORE_SOCIAL_LOGIN beforeSocialLogin (userProperties, socialType) / 225 AFTER_SOCIAL_LOGIN afterSocialLogin;
        226 BEFORE_SOCIAL_REGISTER beforeSocialRegister (userProperties, socialType) / 227 AFTER_SOCIAL_REGISTER afterSocialRegister;
        228 BEFORE_LOGIN_AS_GUEST beforeLoginAsGuest () / 229 AFTER_LOGIN_AS_GUEST afterLoginAsGuest;
        230 BEFORE_O_AUTH_LOGIN beforeOAuthLogin (userProperties, oauthProviderCode) / 231 AFTER_O_AUTH_LOGIN afterOAuthLogin;
        232 BEFORE_O_AUTH_REGISTER beforeOAuthRegister (userProperties, oauthProviderCode) / 233 AFTER_O_AUTH_REGISTER afterOAuthRegister;
        234 BEFORE_GROUP beforeGroup (query) / 235 AFTER_GROUP afterGroup;
        236 BEFORE_UPSERT beforeUpsert () / 237 AFTER_UPSERT afterUpsert;
    }
    /// Event ids of the geo (deprecated) provider.
    geo: Geo {
        402 BEFORE_ADD_POINT beforeAddPoint (point) / 403 AFTER_ADD_POINT afterAddPoint;
        404 BEFORE_UPDATE_POINT beforeUpdatePoint (point) / 405 AFTER_UPDATE_POINT afterUpdatePoint;
        406 BEFORE_REMOVE_POINT beforeRemovePoint (pointId) / 407 AFTER_REMOVE_POINT afterRemovePoint;
        408 BEFORE_GET_CATEGORIES beforeGetCategories () / 409 AFTER_GET_CATEGORIES afterGetCategories;
        410 BEFORE_GET_POINTS beforeGetPoints (query) / 411 AFTER_GET_POINTS afterGetPoints;
        412 BEFORE_ADD_CATEGORY beforeAddCategory (categoryName) / 413 AFTER_ADD_CATEGORY afterAddCategory;
        414 BEFORE_DELETE_CATEGORY beforeDeleteCategory (categoryName) / 415 AFTER_DELETE_CATEGORY afterDeleteCategory;
        416 BEFORE_RELATIVE_FIND beforeRelativeFind (query) / 417 AFTER_RELATIVE_FIND afterRelativeFind;
    }
    /// Event ids of the messaging provider.
    messaging: Messaging {
        500 BEFORE_PUBLISH beforePublish (message, publishOptions, deliveryOptions) / 501 AFTER_PUBLISH afterPublish;
        502 BEFORE_SUBSCRIBE beforeSubscribe (channel, options) / 503 AFTER_SUBSCRIBE afterSubscribe;
        504 BEFORE_CANCEL beforeCancel (messageId) / 505 AFTER_CANCEL afterCancel;
        506 BEFORE_POLL beforePoll (messageId) / 507 AFTER_POLL afterPoll;
        508 BEFORE_PUSH beforePush (templateDescription) / 509 AFTER_PUSH afterPush;
        510 BEFORE_PUSH_WITH_TEMPLATE beforePushWithTemplate (templateName) / 511 AFTER_PUSH_WITH_TEMPLATE afterPushWithTemplate;
        512 BEFORE_DEVICE_REGISTRATION beforeDeviceRegistration (registration) / 513 AFTER_DEVICE_REGISTRATION afterDeviceRegistration;
        514 BEFORE_SEND_EMAIL beforeSendEmail (subject, bodyParts, recipients, attachments) / 515 AFTER_SEND_EMAIL afterSendEmail;
        516 BEFORE_GET_MESSAGE_STATUS beforeGetMessageStatus (messageId) / 517 AFTER_GET_MESSAGE_STATUS afterGetMessageStatus;
        518 BEFORE_SEND_EMAIL_FROM_TEMPLATE beforeSendEmailFromTemplate (templateName, envelope, templateValues) / 519 AFTER_SEND_EMAIL_FROM_TEMPLATE afterSendEmailFromTemplate;
    }
    /// Event ids of the files provider.
    file: File {
        600 BEFORE_UPLOAD beforeUpload (fileURL) / 601 AFTER_UPLOAD afterUpload;
        602 BEFORE_DELETE_FILE_OR_DIRECTORY beforeDeleteFileOrDirectory (fileURL, pattern, recursive) / 603 AFTER_DELETE_FILE_OR_DIRECTORY afterDeleteFileOrDirectory;
        604 BEFORE_SAVE_FILE_FROM_BYTE_ARRAY beforeSaveFileFromByteArray (fileURL, overwrite) / 605 AFTER_SAVE_FILE_FROM_BYTE_ARRAY afterSaveFileFromByteArray;
        606 BEFORE_COPY_FILE_OR_DIRECTORY beforeCopyFileOrDirectory (source, target) / 607 AFTER_COPY_FILE_OR_DIRECTORY afterCopyFileOrDirectory;
        608 BEFORE_MOVE_FILE_OR_DIRECTORY beforeMoveFileOrDirectory (source, target) / 609 AFTER_MOVE_FILE_OR_DIRECTORY afterMoveFileOrDirectory;
        610 BEFORE_COUNT beforeCount (path, pattern, recursive, isCountDirectories) / 611 AFTER_COUNT afterCount;
        612 BEFORE_LISTING beforeListing (path, pattern, recursive, pageSize, offset) / 613 AFTER_LISTING afterListing;
        614 BEFORE_EXISTS beforeExists (path) / 615 AFTER_EXISTS afterExists;
        618 BEFORE_DOWNLOAD beforeDownload (fileURL) [Before];
    }
    /// Event ids of the timers provider.
    timer: Timer {
        800 EXECUTE execute () [Standalone];
    }
    /// Event ids of the custom events provider.
    custom: Custom {
        900 EXECUTE execute (args) [Standalone, result];
    }
    /// Event ids of the cache provider.
    cache: Cache {
        1001 BEFORE_PUT beforePut (key, value, ttl) / 1002 AFTER_PUT afterPut;
        1003 BEFORE_GET beforeGet (key) / 1004 AFTER_GET afterGet;
        1005 BEFORE_CONTAINS beforeContains (key) / 1006 AFTER_CONTAINS afterContains;
        1007 BEFORE_EXPIRE_AT beforeExpireAt (key, expireAt) / 1008 AFTER_EXPIRE_AT afterExpireAt;
        1009 BEFORE_EXPIRE_IN beforeExpireIn (key, expireIn) / 1010 AFTER_EXPIRE_IN afterExpireIn;
        1011 BEFORE_DELETE beforeDelete (key) / 1012 AFTER_DELETE afterDelete;
    }
    /// Event ids of the atomic counters provider.
    atomic_operation: AtomicOperation {
        1201 BEFORE_RESET beforeReset (counterName) / 1202 AFTER_RESET afterReset;
        1203 BEFORE_GET_AND_INCREMENT beforeGetAndIncrement (counterName) / 1204 AFTER_GET_AND_INCREMENT afterGetAndIncrement;
        1205 BEFORE_INCREMENT_AND_GET beforeIncrementAndGet (counterName) / 1206 AFTER_INCREMENT_AND_GET afterIncrementAndGet;
        1207 BEFORE_GET_AND_DECREMENT beforeGetAndDecrement (counterName) / 1208 AFTER_GET_AND_DECREMENT afterGetAndDecrement;
        1209 BEFORE_DECREMENT_AND_GET beforeDecrementAndGet (counterName) / 1210 AFTER_DECREMENT_AND_GET afterDecrementAndGet;
        1211 BEFORE_ADD_AND_GET beforeAddAndGet (counterName, value) / 1212 AFTER_ADD_AND_GET afterAddAndGet;
        1213 BEFORE_GET_AND_ADD beforeGetAndAdd (counterName, value) / 1214 AFTER_GET_AND_ADD afterGetAndAdd;
        1215 BEFORE_GET beforeGet (counterName) / 1216 AFTER_GET afterGet;
        1217 BEFORE_COMPARE_AND_SET beforeCompareAndSet (counterName, expected, updated) / 1218 AFTER_COMPARE_AND_SET afterCompareAndSet;
        1219 BEFORE_LIST beforeList (pattern) / 1220 AFTER_LIST afterList;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `beforeOAuthRegister` -> `BEFORE_O_AUTH_REGISTER`.
    fn constant_name(event_name: &str) -> String {
        let mut out = String::new();
        for c in event_name.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out
    }

    #[test]
    fn every_constant_names_its_event() {
        assert_eq!(CONSTANTS.len(), EVENTS.len());
        for (module, konst, id) in CONSTANTS {
            let def = id
                .def()
                .unwrap_or_else(|| panic!("{module}::{konst} has no row"));
            assert_eq!(
                constant_name(def.name),
                *konst,
                "{module}::{konst} is {def}"
            );
            assert_eq!(def.provider.as_str(), module.replace('_', "-"), "{def}");
        }
    }

    #[test]
    fn ids_are_those_of_the_spec() {
        let spec: Vec<u32> = [
            100..=131,
            134..=143,
            200..=237,
            402..=417,
            500..=519,
            600..=615,
            618..=618,
            800..=800,
            900..=900,
            1001..=1012,
            1201..=1220,
        ]
        .into_iter()
        .flatten()
        .collect();
        let ids: Vec<u32> = EVENTS.iter().map(|e| e.id.0).collect();
        assert_eq!(ids, spec);
        assert_eq!(ids.len(), 167);
    }

    #[test]
    fn spot_checks_match_the_spec() {
        use Provider::*;
        let checks: &[(u32, Provider, &str, &[&str])] = &[
            (100, Persistence, "beforeCreate", &["item"]),
            (
                105,
                Persistence,
                "afterLoadRelations",
                &["itemId", "entityName", "relationName", "pageSize", "offset"],
            ),
            (134, Persistence, "beforeTransaction", &["unitOfWork"]),
            (143, Persistence, "afterUpsertBulk", &["items"]),
            (201, User, "afterLogin", &["login", "password"]),
            (208, User, "beforeDescribe", &[]),
            (
                233,
                User,
                "afterOAuthRegister",
                &["userProperties", "oauthProviderCode"],
            ),
            (236, User, "beforeUpsert", &[]),
            (402, Geo, "beforeAddPoint", &["point"]),
            (417, Geo, "afterRelativeFind", &["query"]),
            (
                500,
                Messaging,
                "beforePublish",
                &["message", "publishOptions", "deliveryOptions"],
            ),
            (
                519,
                Messaging,
                "afterSendEmailFromTemplate",
                &["templateName", "envelope", "templateValues"],
            ),
            (
                602,
                File,
                "beforeDeleteFileOrDirectory",
                &["fileURL", "pattern", "recursive"],
            ),
            (
                613,
                File,
                "afterListing",
                &["path", "pattern", "recursive", "pageSize", "offset"],
            ),
            (618, File, "beforeDownload", &["fileURL"]),
            (800, Timer, "execute", &[]),
            (900, Custom, "execute", &["args"]),
            (1001, Cache, "beforePut", &["key", "value", "ttl"]),
            (1012, Cache, "afterDelete", &["key"]),
            (1201, AtomicOperation, "beforeReset", &["counterName"]),
            (
                1218,
                AtomicOperation,
                "afterCompareAndSet",
                &["counterName", "expected", "updated"],
            ),
            (1220, AtomicOperation, "afterList", &["pattern"]),
        ];
        for &(id, provider, name, args) in checks {
            let def = EventId(id).def().unwrap_or_else(|| panic!("{id} missing"));
            assert_eq!(
                (def.provider, def.name, def.args),
                (provider, name, args),
                "{id}"
            );
        }
    }

    #[test]
    fn result_flag_follows_the_phase_and_the_table() {
        for e in EVENTS {
            let expected = e.phase == Phase::After || e.id == super::custom::EXECUTE;
            assert_eq!(e.has_result(), expected, "{e}");
        }
        let download = super::file::BEFORE_DOWNLOAD.def().unwrap();
        assert_eq!((download.phase, download.pair), (Phase::Before, None));
        assert_eq!(
            super::timer::EXECUTE.def().unwrap().phase,
            Phase::Standalone
        );
    }
}
