"""The use cases: what happens to an order and a parcel, in which order, with which guarantees."""
