"""Importers: measured data in foreign formats -> the measurement NetCDF that ``inverse reconstruct`` reads."""

__all__: list[str] = []
