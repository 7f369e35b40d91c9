//! The i8042 PS/2 controller and keyboard as a pure device model.
