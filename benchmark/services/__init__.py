"""Writes of the benchmark app: release building, exports, datasheets, packaging."""
