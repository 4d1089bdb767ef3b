from verdant.models.base import Base
from verdant.models.care import CareLog
from verdant.models.garden import Bed, Greenhouse, Plant

__all__ = ["Base", "Bed", "CareLog", "Greenhouse", "Plant"]
