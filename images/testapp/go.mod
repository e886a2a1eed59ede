module meshcert.local/testapp

go 1.24.0
