"""Text processing: conversion to Markdown and chunking."""
