"""The builder a data set registers (``bsattack.datasets.DatasetSpec.build``), made from a
network's ``build`` function: the network with the official widths, with given ``widths``, or
with the widths read off a checkpoint's variable shapes (so narrow test networks load too)."""
from madry_models.checkpoint import check_ranks


def checkpoint_builder(build, widths_from_shapes, official_widths, ranks):
    """``build_for(x01=None, scope=None, shapes=None, source=None, widths=None) -> model``:
    with ``shapes`` ({name: shape} of checkpoint ``source``) the widths come from them, after
    the variables they are read from are checked to have the ``ranks`` ({name: rank})."""
    def build_for(x01=None, scope=None, shapes=None, source=None, widths=None):
        if shapes is None:
            return build(x01, scope=scope, widths=widths or official_widths)
        check_ranks(source, shapes, ranks)
        return build(x01, scope=scope, widths=widths_from_shapes(shapes))
    return build_for
