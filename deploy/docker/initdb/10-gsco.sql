-- One database for MLflow and the registry's own tables, one shared by the hub replicas.
CREATE DATABASE mlflow;
CREATE DATABASE hub;
