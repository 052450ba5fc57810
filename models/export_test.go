package models

// Test hooks for the external test package.

var DeleteUserError = deleteUserError
