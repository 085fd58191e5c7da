//! A Graph request, parsed from method and path into a [`GraphEndpoint`], and the Graph
//! plane's one permission table, [`GraphEndpoint::requirement`]: reads (and Graph's read-only
//! POSTs) need only sign-in; changing the directory needs the directory-write right, except
//! that a group's owners may change its members and owners and delete it (as in Entra).

use axum::http::Method;

use crate::model::directory::MemberKind;

/// The management action whose holders at the subscription may change the directory: the
/// right to assign roles (Owner, User Access Administrator). Whoever may create a service
/// principal with a secret and assign it roles could otherwise raise their own access.
pub const DIRECTORY_WRITE_ACTION: &str = "Microsoft.Authorization/roleAssignments/write";

/// A Graph request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphEndpoint {
    GetMe,
    ListUsers,
    CreateUser,
    GetUser(String),
    UpdateUser(String),
    DeleteUser(String),
    ListApplications,
    CreateApplication,
    GetApplication(String),
    UpdateApplication(String),
    DeleteApplication(String),
    /// `POST /applications/{id}/addPassword` or `/servicePrincipals/{id}/addPassword`.
    AddPassword(SecretHolder, String),
    /// `POST /applications/{id}/removePassword` or `/servicePrincipals/{id}/removePassword`.
    RemovePassword(SecretHolder, String),
    ListServicePrincipals,
    CreateServicePrincipal,
    GetServicePrincipal(String),
    UpdateServicePrincipal(String),
    DeleteServicePrincipal(String),
    /// `POST /directoryObjects/getByIds`.
    GetByIds,
    ListGroups,
    CreateGroup,
    GetGroup(String),
    DeleteGroup(String),
    /// `GET /groups/{id}/members`.
    ListGroupMembers(String),
    /// `POST /groups/{id}/members/$ref`.
    AddGroupMember(String),
    /// `DELETE /groups/{id}/members/{memberId}/$ref`.
    RemoveGroupMember(String, String),
    /// `GET /groups/{id}/owners`.
    ListGroupOwners(String),
    /// `POST /groups/{id}/owners/$ref`.
    AddGroupOwner(String),
    /// `DELETE /groups/{id}/owners/{ownerId}/$ref`.
    RemoveGroupOwner(String, String),
    /// `POST /{collection}/{id}/checkMemberGroups`.
    CheckMemberGroups(ObjectCollection, String),
    /// `POST /{collection}/{id}/getMemberGroups`.
    GetMemberGroups(ObjectCollection, String),
    /// A served path with a method it does not take.
    MethodNotAllowed(Method),
}

/// What a Graph endpoint needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphRequirement {
    /// Any signed-in principal.
    SignedIn,
    /// [`DIRECTORY_WRITE_ACTION`] at the subscription, or ownership of `owned_group` when given.
    DirectoryWrite { owned_group: Option<String> },
}

/// Which object a secret is added to or removed from. Entra keeps one list of secrets on the
/// application and another on its service principal (`az ad app credential …` and `az ad sp
/// credential …`); Wharf keeps one per application/service-principal pair, reached through
/// either (docs/decisions.md, "One secret list per application").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretHolder {
    Application,
    ServicePrincipal,
}

/// The collection a directory object is addressed through; `directoryObjects` names any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectCollection {
    DirectoryObjects,
    Users,
    ServicePrincipals,
    Groups,
}

impl ObjectCollection {
    pub(super) fn parse(seg: &str) -> Option<ObjectCollection> {
        [
            ("directoryObjects", ObjectCollection::DirectoryObjects),
            ("users", ObjectCollection::Users),
            ("servicePrincipals", ObjectCollection::ServicePrincipals),
            ("groups", ObjectCollection::Groups),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(seg))
        .map(|(_, c)| c)
    }

    pub fn admits(self, kind: MemberKind) -> bool {
        match self {
            ObjectCollection::DirectoryObjects => true,
            ObjectCollection::Users => kind == MemberKind::User,
            ObjectCollection::ServicePrincipals => kind == MemberKind::ServicePrincipal,
            ObjectCollection::Groups => kind == MemberKind::Group,
        }
    }
}

impl GraphEndpoint {
    /// Parses method and path (`/v1.0/…`); `None` for a path Graph serves nothing at.
    pub fn parse(method: &Method, path: &str) -> Option<GraphEndpoint> {
        use GraphEndpoint as E;
        let rest = path.strip_prefix("/v1.0/")?;
        let segs: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let is = |i: usize, kw: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let seg = |i: usize| segs[i].clone();
        let m = method.clone();
        let (get, post, delete) = (Method::GET, Method::POST, Method::DELETE);
        let only = |wanted: &Method, ep: GraphEndpoint| if m == *wanted { ep } else { E::MethodNotAllowed(m.clone()) };
        Some(match segs.len() {
            1 if is(0, "me") => only(&get, E::GetMe),
            1 if is(0, "users") => match m {
                Method::GET => E::ListUsers,
                Method::POST => E::CreateUser,
                _ => E::MethodNotAllowed(m),
            },
            2 if is(0, "users") => match m {
                Method::GET => E::GetUser(seg(1)),
                Method::PATCH => E::UpdateUser(seg(1)),
                Method::DELETE => E::DeleteUser(seg(1)),
                _ => E::MethodNotAllowed(m),
            },
            1 if is(0, "applications") => match m {
                Method::GET => E::ListApplications,
                Method::POST => E::CreateApplication,
                _ => E::MethodNotAllowed(m),
            },
            2 if is(0, "applications") => match m {
                Method::GET => E::GetApplication(seg(1)),
                Method::PATCH => E::UpdateApplication(seg(1)),
                Method::DELETE => E::DeleteApplication(seg(1)),
                _ => E::MethodNotAllowed(m),
            },
            3 if is(0, "applications") && is(2, "addPassword") => {
                only(&post, E::AddPassword(SecretHolder::Application, seg(1)))
            }
            3 if is(0, "applications") && is(2, "removePassword") => {
                only(&post, E::RemovePassword(SecretHolder::Application, seg(1)))
            }
            3 if is(0, "servicePrincipals") && is(2, "addPassword") => {
                only(&post, E::AddPassword(SecretHolder::ServicePrincipal, seg(1)))
            }
            3 if is(0, "servicePrincipals") && is(2, "removePassword") => {
                only(&post, E::RemovePassword(SecretHolder::ServicePrincipal, seg(1)))
            }
            1 if is(0, "servicePrincipals") => match m {
                Method::GET => E::ListServicePrincipals,
                Method::POST => E::CreateServicePrincipal,
                _ => E::MethodNotAllowed(m),
            },
            2 if is(0, "servicePrincipals") => match m {
                Method::GET => E::GetServicePrincipal(seg(1)),
                Method::PATCH => E::UpdateServicePrincipal(seg(1)),
                Method::DELETE => E::DeleteServicePrincipal(seg(1)),
                _ => E::MethodNotAllowed(m),
            },
            2 if is(0, "directoryObjects") && is(1, "getByIds") => only(&post, E::GetByIds),
            1 if is(0, "groups") => match m {
                Method::GET => E::ListGroups,
                Method::POST => E::CreateGroup,
                _ => E::MethodNotAllowed(m),
            },
            2 if is(0, "groups") => match m {
                Method::GET => E::GetGroup(seg(1)),
                Method::DELETE => E::DeleteGroup(seg(1)),
                _ => E::MethodNotAllowed(m),
            },
            3 if is(0, "groups") && is(2, "members") => only(&get, E::ListGroupMembers(seg(1))),
            4 if is(0, "groups") && is(2, "members") && is(3, "$ref") => only(&post, E::AddGroupMember(seg(1))),
            5 if is(0, "groups") && is(2, "members") && is(4, "$ref") => {
                only(&delete, E::RemoveGroupMember(seg(1), seg(3)))
            }
            3 if is(0, "groups") && is(2, "owners") => only(&get, E::ListGroupOwners(seg(1))),
            4 if is(0, "groups") && is(2, "owners") && is(3, "$ref") => only(&post, E::AddGroupOwner(seg(1))),
            5 if is(0, "groups") && is(2, "owners") && is(4, "$ref") => {
                only(&delete, E::RemoveGroupOwner(seg(1), seg(3)))
            }
            3 if is(2, "checkMemberGroups") => {
                only(&post, E::CheckMemberGroups(ObjectCollection::parse(&segs[0])?, seg(1)))
            }
            3 if is(2, "getMemberGroups") => {
                only(&post, E::GetMemberGroups(ObjectCollection::parse(&segs[0])?, seg(1)))
            }
            _ => return None,
        })
    }

    /// What the endpoint needs: the Graph plane's one permission table.
    pub fn requirement(&self) -> GraphRequirement {
        use GraphEndpoint as E;
        let write =
            |owned_group: Option<&String>| GraphRequirement::DirectoryWrite { owned_group: owned_group.cloned() };
        match self {
            // Reads, and Graph's read-only POSTs (they change nothing).
            E::GetMe
            | E::ListUsers
            | E::GetUser(_)
            | E::ListApplications
            | E::GetApplication(_)
            | E::ListServicePrincipals
            | E::GetServicePrincipal(_)
            | E::GetByIds
            | E::ListGroups
            | E::GetGroup(_)
            | E::ListGroupMembers(_)
            | E::ListGroupOwners(_)
            | E::CheckMemberGroups(..)
            | E::GetMemberGroups(..)
            | E::MethodNotAllowed(_) => GraphRequirement::SignedIn,
            E::CreateUser
            | E::UpdateUser(_)
            | E::DeleteUser(_)
            | E::CreateApplication
            | E::UpdateApplication(_)
            | E::DeleteApplication(_)
            | E::AddPassword(..)
            | E::RemovePassword(..)
            | E::CreateServicePrincipal
            | E::UpdateServicePrincipal(_)
            | E::DeleteServicePrincipal(_)
            | E::CreateGroup => write(None),
            // A group's owners may change its members and owners, and delete it.
            E::DeleteGroup(g)
            | E::AddGroupMember(g)
            | E::RemoveGroupMember(g, _)
            | E::AddGroupOwner(g)
            | E::RemoveGroupOwner(g, _) => write(Some(g)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: Method, path: &str) -> Option<GraphEndpoint> {
        GraphEndpoint::parse(&m, path)
    }

    #[test]
    fn endpoints_parse() {
        use GraphEndpoint as E;
        assert_eq!(p(Method::GET, "/v1.0/users"), Some(E::ListUsers));
        assert_eq!(p(Method::GET, "/v1.0/users/a%40b.c"), Some(E::GetUser("a@b.c".into())));
        assert_eq!(
            p(Method::POST, "/v1.0/applications/x/addPassword"),
            Some(E::AddPassword(SecretHolder::Application, "x".into()))
        );
        assert_eq!(
            p(Method::POST, "/v1.0/servicePrincipals/x/removePassword"),
            Some(E::RemovePassword(SecretHolder::ServicePrincipal, "x".into()))
        );
        assert_eq!(p(Method::GET, "/v1.0/servicePrincipals/"), Some(E::ListServicePrincipals));
        assert_eq!(p(Method::POST, "/v1.0/groups/g1/members/%24ref"), Some(E::AddGroupMember("g1".into())));
        assert_eq!(
            p(Method::DELETE, "/v1.0/groups/g1/members/m1/$ref"),
            Some(E::RemoveGroupMember("g1".into(), "m1".into()))
        );
        assert_eq!(p(Method::GET, "/v1.0/groups/g1/members/m1"), None);
        assert_eq!(
            p(Method::POST, "/v1.0/users/a@b.c/getMemberGroups"),
            Some(E::GetMemberGroups(ObjectCollection::Users, "a@b.c".into()))
        );
        assert_eq!(p(Method::POST, "/v1.0/applications/x/checkMemberGroups"), None);
        assert_eq!(p(Method::PUT, "/v1.0/users"), Some(E::MethodNotAllowed(Method::PUT)));
        assert_eq!(p(Method::GET, "/v1.0/groups/g1/owners/$ref"), Some(E::MethodNotAllowed(Method::GET)));
    }

    /// Every endpoint and what it needs (a new endpoint without a row fails to compile in
    /// `requirement` and fails the count here).
    #[test]
    fn every_endpoint_has_its_requirement() {
        use GraphEndpoint as E;
        use GraphRequirement::*;
        let owner = |g: &str| DirectoryWrite { owned_group: Some(g.into()) };
        let admin = DirectoryWrite { owned_group: None };
        let table: Vec<(Method, &str, GraphEndpoint, GraphRequirement)> = vec![
            (Method::GET, "/v1.0/me", E::GetMe, SignedIn),
            (Method::GET, "/v1.0/users", E::ListUsers, SignedIn),
            (Method::POST, "/v1.0/users", E::CreateUser, admin.clone()),
            (Method::GET, "/v1.0/users/u", E::GetUser("u".into()), SignedIn),
            (Method::PATCH, "/v1.0/users/u", E::UpdateUser("u".into()), admin.clone()),
            (Method::DELETE, "/v1.0/users/u", E::DeleteUser("u".into()), admin.clone()),
            (Method::GET, "/v1.0/applications", E::ListApplications, SignedIn),
            (Method::POST, "/v1.0/applications", E::CreateApplication, admin.clone()),
            (Method::GET, "/v1.0/applications/a", E::GetApplication("a".into()), SignedIn),
            (Method::PATCH, "/v1.0/applications/a", E::UpdateApplication("a".into()), admin.clone()),
            (Method::DELETE, "/v1.0/applications/a", E::DeleteApplication("a".into()), admin.clone()),
            (
                Method::POST,
                "/v1.0/applications/a/addPassword",
                E::AddPassword(SecretHolder::Application, "a".into()),
                admin.clone(),
            ),
            (
                Method::POST,
                "/v1.0/applications/a/removePassword",
                E::RemovePassword(SecretHolder::Application, "a".into()),
                admin.clone(),
            ),
            (Method::GET, "/v1.0/servicePrincipals", E::ListServicePrincipals, SignedIn),
            (Method::POST, "/v1.0/servicePrincipals", E::CreateServicePrincipal, admin.clone()),
            (Method::GET, "/v1.0/servicePrincipals/s", E::GetServicePrincipal("s".into()), SignedIn),
            (Method::PATCH, "/v1.0/servicePrincipals/s", E::UpdateServicePrincipal("s".into()), admin.clone()),
            (Method::DELETE, "/v1.0/servicePrincipals/s", E::DeleteServicePrincipal("s".into()), admin.clone()),
            (Method::POST, "/v1.0/directoryObjects/getByIds", E::GetByIds, SignedIn),
            (Method::GET, "/v1.0/groups", E::ListGroups, SignedIn),
            (Method::POST, "/v1.0/groups", E::CreateGroup, admin.clone()),
            (Method::GET, "/v1.0/groups/g", E::GetGroup("g".into()), SignedIn),
            (Method::DELETE, "/v1.0/groups/g", E::DeleteGroup("g".into()), owner("g")),
            (Method::GET, "/v1.0/groups/g/members", E::ListGroupMembers("g".into()), SignedIn),
            (Method::POST, "/v1.0/groups/g/members/$ref", E::AddGroupMember("g".into()), owner("g")),
            (Method::DELETE, "/v1.0/groups/g/members/m/$ref", E::RemoveGroupMember("g".into(), "m".into()), owner("g")),
            (Method::GET, "/v1.0/groups/g/owners", E::ListGroupOwners("g".into()), SignedIn),
            (Method::POST, "/v1.0/groups/g/owners/$ref", E::AddGroupOwner("g".into()), owner("g")),
            (Method::DELETE, "/v1.0/groups/g/owners/o/$ref", E::RemoveGroupOwner("g".into(), "o".into()), owner("g")),
            (
                Method::POST,
                "/v1.0/groups/g/checkMemberGroups",
                E::CheckMemberGroups(ObjectCollection::Groups, "g".into()),
                SignedIn,
            ),
            (
                Method::POST,
                "/v1.0/servicePrincipals/s/getMemberGroups",
                E::GetMemberGroups(ObjectCollection::ServicePrincipals, "s".into()),
                SignedIn,
            ),
            (Method::PUT, "/v1.0/groups", E::MethodNotAllowed(Method::PUT), SignedIn),
        ];
        let mut variants = std::collections::HashSet::new();
        for (method, path, endpoint, requirement) in table {
            assert_eq!(p(method.clone(), path).as_ref(), Some(&endpoint), "{method} {path}");
            assert_eq!(endpoint.requirement(), requirement, "{method} {path}");
            variants.insert(std::mem::discriminant(&endpoint));
        }
        assert_eq!(variants.len(), 32, "every GraphEndpoint variant appears in the table");
    }
}
