"""Which relationship attributes are collections: from ``uselist`` or a ``Mapped[...]``
annotation, or else from the foreign keys between the two tables, as SQLAlchemy decides."""

from __future__ import annotations

from pathlib import Path

from refactor_tool.model import fixtures as fx
from refactor_tool.model.config import load_config
from refactor_tool.model.project import Project

MODELS = '''
from sqlalchemy import Column, ForeignKey, ForeignKeyConstraint, String, Table
from sqlalchemy.orm import relationship

from pantry.base import Base


class Shelf(Base):
    __tablename__ = "shelves"

    id = Column(String, primary_key=True)
    jars = relationship("Jar", back_populates="shelf")
    labels = relationship("Label", secondary="shelf_labels")
    parent_id = Column(String, ForeignKey("shelves.id"))
    children = relationship("Shelf")


class Jar(Base):
    __tablename__ = "jars"

    id = Column(String, primary_key=True)
    shelf_id = Column(String, ForeignKey(Shelf.id))
    shelf = relationship("Shelf", back_populates="jars")
    lid = relationship("Lid", primaryjoin="Lid.jar_id == Jar.id")


class Lid(Base):
    __tablename__ = "lids"
    __table_args__ = (ForeignKeyConstraint(["jar_id"], ["jars.id"]),)

    id = Column(String, primary_key=True)
    jar_id = Column(String)
    jar = relationship("Jar")
'''


def test_relationship_kinds_from_foreign_keys(tmp_path: Path) -> None:
    (tmp_path / "pantry").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.refactor-tool]\npackage = "pantry"\n')
    (tmp_path / "pantry" / "__init__.py").write_text("")
    (tmp_path / "pantry" / "models.py").write_text(MODELS)
    kinds = fx.relationship_kinds(Project(tmp_path, load_config(tmp_path)))
    assert kinds["jars"] == {"collection"}  # the key is on jars: one shelf, many jars
    assert kinds["shelf"] == {"scalar"}  # ForeignKey(Shelf.id) on the owner's own table
    assert kinds["labels"] == {"collection"}  # a secondary table
    assert kinds["children"] == {"unknown"}  # a self-reference needs remote_side to tell
    assert kinds["lid"] == {"unknown"}  # a primaryjoin of its own
    assert kinds["jar"] == {"unknown"}  # the key is in __table_args__
