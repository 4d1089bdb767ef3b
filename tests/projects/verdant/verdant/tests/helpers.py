"""Helpers shared by several test modules."""


def fill_bed(plant_manager, bed_id, species, count):
    """Plant ``count`` copies of ``species`` in the bed and return them."""
    return [
        plant_manager.add_plant(species, bed_id=bed_id, nickname=f"{species}-{i}")
        for i in range(count)
    ]
