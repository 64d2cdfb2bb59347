//! Who may change a space's members, and how: pure rules, so both
//! backends apply exactly the same ones (and tests need no database).
//! Adding a member takes an invitation the invitee accepts
//! ([`invitations`]); the addition itself is [`Request::Add`], decided
//! at acceptance.

pub mod invitations;

use tidesync_protocol::Role;

/// What the backend found about the space and the people involved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The space is shared already (it has a scope of its own).
    pub shared: bool,
    /// The acting user's role: `Owner` for a space in their personal scope.
    pub actor: Role,
    /// The other user's role in the space's scope, if any (`None` for
    /// someone who never was a member).
    pub target: Option<Role>,
    /// The other user is the acting user.
    pub target_is_actor: bool,
}

/// A requested change, with the role it asks for where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Add(Role),
    SetRole(Role),
    Remove,
    Transfer,
}

/// What to do: new roles for the acting user and the other one, and
/// whether the space must first move into a scope of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub share_first: bool,
    pub actor: Option<Role>,
    pub target: Option<Role>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Answered 404: the other user is not a member.
    NotFound(&'static str),
    /// Answered 403: a member who may not do this.
    Forbidden(&'static str),
    /// Answered 409: the state does not allow it.
    Conflict(&'static str),
    /// Answered 400: the request itself is wrong.
    Invalid(&'static str),
    /// Answered 429: too many invitations; retry after this many
    /// milliseconds.
    RateLimited(i64),
}

fn member_role(role: Role) -> Result<Role, Refusal> {
    match role {
        Role::Editor | Role::Viewer => Ok(role),
        _ => Err(Refusal::Invalid("role must be editor or viewer")),
    }
}

fn owner_only(a: &Access) -> Result<(), Refusal> {
    if a.actor == Role::Owner {
        Ok(())
    } else {
        Err(Refusal::Forbidden("only the space's owner can do this"))
    }
}

fn active(role: Option<Role>) -> bool {
    role.is_some_and(Role::can_read)
}

pub fn decide(request: Request, a: &Access) -> Result<Decision, Refusal> {
    let set = |actor: Option<Role>, target: Option<Role>| Decision {
        share_first: false,
        actor,
        target,
    };
    match request {
        Request::Add(role) => {
            let role = member_role(role)?;
            owner_only(a)?;
            if a.target_is_actor {
                return Err(Refusal::Invalid("you own this space already"));
            }
            if active(a.target) {
                return Err(Refusal::Conflict(
                    "already a member: change the role with PATCH instead",
                ));
            }
            Ok(Decision {
                share_first: !a.shared,
                ..set(None, Some(role))
            })
        }
        Request::SetRole(role) => {
            let role = member_role(role)?;
            owner_only(a)?;
            if a.target_is_actor {
                return Err(Refusal::Conflict(
                    "the owner's role changes only by transferring the ownership",
                ));
            }
            if !active(a.target) {
                return Err(Refusal::NotFound("no such member"));
            }
            Ok(set(None, Some(role)))
        }
        Request::Remove if a.target_is_actor => {
            if a.actor == Role::Owner {
                return Err(Refusal::Conflict(
                    "the owner cannot leave: transfer the ownership first",
                ));
            }
            Ok(set(Some(Role::Removed), None))
        }
        Request::Remove => {
            owner_only(a)?;
            if !active(a.target) {
                return Err(Refusal::NotFound("no such member"));
            }
            Ok(set(None, Some(Role::Removed)))
        }
        Request::Transfer => {
            owner_only(a)?;
            if a.target_is_actor {
                return Err(Refusal::Invalid("you own this space already"));
            }
            if !active(a.target) {
                return Err(Refusal::NotFound("no such member"));
            }
            Ok(set(Some(Role::Editor), Some(Role::Owner)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(actor: Role, target: Option<Role>) -> Access {
        Access {
            shared: true,
            actor,
            target,
            target_is_actor: false,
        }
    }

    #[test]
    fn only_the_owner_adds_and_the_first_member_shares() {
        let mut a = access(Role::Owner, None);
        a.shared = false;
        let d = decide(Request::Add(Role::Viewer), &a).unwrap();
        assert!(d.share_first);
        assert_eq!(d.target, Some(Role::Viewer));
        let d = decide(
            Request::Add(Role::Editor),
            &access(Role::Owner, Some(Role::Removed)),
        )
        .unwrap();
        assert!(!d.share_first, "a former member comes back");
        for actor in [Role::Editor, Role::Viewer] {
            assert!(matches!(
                decide(Request::Add(Role::Viewer), &access(actor, None)),
                Err(Refusal::Forbidden(_))
            ));
        }
        assert!(matches!(
            decide(Request::Add(Role::Owner), &access(Role::Owner, None)),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            decide(
                Request::Add(Role::Viewer),
                &access(Role::Owner, Some(Role::Editor))
            ),
            Err(Refusal::Conflict(_))
        ));
    }

    #[test]
    fn members_leave_and_the_owner_removes_but_does_not_leave() {
        let mut me = access(Role::Viewer, Some(Role::Viewer));
        me.target_is_actor = true;
        assert_eq!(
            decide(Request::Remove, &me).unwrap().actor,
            Some(Role::Removed)
        );
        let mut owner = access(Role::Owner, Some(Role::Owner));
        owner.target_is_actor = true;
        assert!(matches!(
            decide(Request::Remove, &owner),
            Err(Refusal::Conflict(_))
        ));
        assert_eq!(
            decide(Request::Remove, &access(Role::Owner, Some(Role::Editor)))
                .unwrap()
                .target,
            Some(Role::Removed)
        );
        assert!(matches!(
            decide(Request::Remove, &access(Role::Editor, Some(Role::Viewer))),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            decide(Request::Remove, &access(Role::Owner, Some(Role::Removed))),
            Err(Refusal::NotFound(_))
        ));
    }

    #[test]
    fn roles_change_and_ownership_moves_to_an_active_member() {
        assert_eq!(
            decide(
                Request::SetRole(Role::Viewer),
                &access(Role::Owner, Some(Role::Editor))
            )
            .unwrap()
            .target,
            Some(Role::Viewer)
        );
        assert!(matches!(
            decide(Request::SetRole(Role::Editor), &access(Role::Owner, None)),
            Err(Refusal::NotFound(_))
        ));
        let d = decide(Request::Transfer, &access(Role::Owner, Some(Role::Viewer))).unwrap();
        assert_eq!((d.actor, d.target), (Some(Role::Editor), Some(Role::Owner)));
        assert!(matches!(
            decide(Request::Transfer, &access(Role::Editor, Some(Role::Viewer))),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            decide(Request::Transfer, &access(Role::Owner, Some(Role::Removed))),
            Err(Refusal::NotFound(_))
        ));
    }
}
