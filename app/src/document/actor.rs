//! Who wrote a change: actors name a person, the session (device) they signed in with,
//! and a salt per page load or server process.

use super::*;

/// An actor id for a device or server, from a UUID.
#[must_use]
pub fn actor_from_uuid(id: uuid::Uuid) -> ActorId {
    ActorId::from(id.as_bytes().as_slice())
}

/// The actor a person writes as: their user id (16 bytes), then the last 8 bytes of the
/// session they signed in with (which device), then 4 bytes of their own (a fresh value
/// per page load or server process, so two writers never reuse an actor's sequence
/// numbers). The server accepts new changes only under the signed-in person's user id, so
/// every change in a document says who made it and on which device.
#[must_use]
pub fn actor_for(user: uuid::Uuid, session: uuid::Uuid, salt: [u8; 4]) -> ActorId {
    let mut bytes = Vec::with_capacity(ACTOR_LEN);
    bytes.extend_from_slice(user.as_bytes());
    bytes.extend_from_slice(&session.as_bytes()[8..]);
    bytes.extend_from_slice(&salt);
    ActorId::from(bytes.as_slice())
}

/// Bytes in an actor made by [`actor_for`].
pub const ACTOR_LEN: usize = 28;

/// Whose an actor is: the user id and the session tag (last 8 bytes of the session id),
/// if it was made by [`actor_for`].
#[must_use]
pub fn actor_owner(actor: &ActorId) -> Option<(uuid::Uuid, [u8; 8])> {
    let bytes = actor.to_bytes();
    if bytes.len() != ACTOR_LEN {
        return None;
    }
    let user = uuid::Uuid::from_slice(&bytes[..16]).ok()?;
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&bytes[16..24]);
    Some((user, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_names_its_person_and_session() {
        let (user, session) = (
            uuid::Uuid::from_u128(7),
            uuid::Uuid::from_u128(0xfeed_0000_0000_0000_00aa),
        );
        let a = actor_for(user, session, [1, 2, 3, 4]);
        let (who, tag) = actor_owner(&a).unwrap();
        assert_eq!(who, user);
        assert_eq!(tag, session.as_bytes()[8..]);
        assert_ne!(
            a,
            actor_for(user, session, [1, 2, 3, 5]),
            "distinct per page load"
        );
        assert_eq!(
            actor_owner(&ActorId::from([1u8; 16].as_slice())),
            None,
            "a plain 16-byte actor names no one"
        );
    }
}
