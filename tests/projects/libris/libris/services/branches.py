"""Branches of the library and which one the desk is working at."""

from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from libris.errors import BranchError
from libris.models import Branch
from libris.services.base import BaseManager


class BranchManager(BaseManager[Branch, str]):
    def __init__(self, session: Optional[Session] = None):
        super().__init__(session=session)

    def open_branch(self, code: str, name: str, make_current: bool = False) -> Branch:
        code = code.strip().upper()
        if not code:
            raise BranchError("A branch needs a code")

        def _open(session: Session) -> Branch:
            if session.scalar(select(Branch).where(Branch.code == code)) is not None:
                raise BranchError(f"Branch {code} already exists")
            if make_current:
                for other in session.scalars(select(Branch).where(Branch.is_current.is_(True))):
                    other.is_current = False
            branch = Branch(code=code, name=name, is_current=make_current)
            session.add(branch)
            session.flush()
            return branch

        return self._execute_db_operation("open_branch", _open)

    def list_branches(self) -> List[Branch]:
        return self._execute_db_operation(
            "list_branches", lambda session: list(session.scalars(select(Branch).order_by(Branch.code)))
        )

    def get_by_code(self, code: str) -> Optional[Branch]:
        def _get(session: Session) -> Optional[Branch]:
            return session.scalar(select(Branch).where(Branch.code == code.upper()))

        return self._execute_db_operation("get_by_code", _get)

    def current_branch(self) -> Branch:
        def _current(session: Session) -> Optional[Branch]:
            return session.scalar(select(Branch).where(Branch.is_current.is_(True)))

        branch = self._execute_db_operation("current_branch", _current)
        if branch is None:
            raise BranchError("No current branch; run `libris branch use CODE` first")
        return branch

    def use_branch(self, code: str) -> Branch:
        def _use(session: Session) -> Branch:
            branch = session.scalar(select(Branch).where(Branch.code == code.upper()))
            if branch is None:
                raise BranchError(f"No branch {code}")
            for other in session.scalars(select(Branch).where(Branch.is_current.is_(True))):
                other.is_current = False
            branch.is_current = True
            return branch

        return self._execute_db_operation("use_branch", _use)
