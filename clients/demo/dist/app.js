// placeholder: replaced by the demo build
