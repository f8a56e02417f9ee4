"""The password policy, applied whenever a password is set (a new user, a password change).

Long rather than complicated (NIST SP 800-63B): a minimum length, and a refusal of what an attacker
tries first — digits only, the email or workspace name, one character repeated, the most common
passwords. Existing passwords are not checked again; the policy meets them at their next change.
"""

from __future__ import annotations

from collections.abc import Iterable

from layanify.errors import Unprocessable

DEFAULT_MIN_LENGTH = 12

# The most common passwords of at least 8 characters in public breach lists, and local favourites.
# Anything shorter than the minimum length is refused anyway; this catches the long-but-obvious.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "password12345",
        "passwordpassword",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "p@ssword123",
        "qwertyuiop",
        "qwertyuiop123",
        "qwerty123",
        "qwerty123456",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1q2w3e4r5t6y",
        "q1w2e3r4t5y6",
        "1qaz2wsx",
        "1qaz2wsx3edc",
        "zaq12wsx",
        "qazwsxedc",
        "qazwsxedcrfv",
        "asdfghjkl",
        "asdfghjkl123",
        "1234qwer",
        "abcd1234",
        "abc12345",
        "abc123456",
        "abcdefgh",
        "abcdefghijkl",
        "aa123456",
        "iloveyou",
        "iloveyou123",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "superman",
        "starwars",
        "computer",
        "internet",
        "welcome1",
        "welcome123",
        "letmein123",
        "trustno1",
        "admin123",
        "admin12345",
        "administrator",
        "changeme",
        "changeme123",
        "master123",
        "dragon123",
        "monkey123",
        "whatsapp",
        "whatsapp123",
        "layanify",
        "layanify123",
        "bismillah",
        "bismillah123",
        "indonesia",
        "indonesia123",
        "sayangku",
        "sayang123",
        "rahasia123",
        "rahasia1234",
        "jakarta123",
    }
)


def password_problem(
    password: str, *, min_length: int, email: str, workspace_names: Iterable[str] = ()
) -> str | None:
    """What is wrong with the password under the policy (a sentence for the user), or None."""
    if len(password) < min_length:
        return f"the password must be at least {min_length} characters long"
    folded = password.strip().casefold()
    if folded.isdigit():
        return "the password cannot be only digits"
    email = email.strip().casefold()
    if folded in {email, email.partition("@")[0]}:
        return "the password cannot be your email address"
    if folded in {name.strip().casefold() for name in workspace_names if name.strip()}:
        return "the password cannot be the workspace's name"
    if folded in COMMON_PASSWORDS or len(set(folded)) == 1:
        return "this password is one of the most common ones and is guessed first; choose another"
    return None


def check_password(
    password: str, *, min_length: int, email: str, workspace_names: Iterable[str] = ()
) -> None:
    """Refuse a password the policy does not allow: 422 `weak_password` with the reason."""
    problem = password_problem(password, min_length=min_length, email=email, workspace_names=workspace_names)
    if problem is not None:
        raise Unprocessable(problem, code="weak_password")
