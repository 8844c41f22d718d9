//! A client's applications: visa categories and types with visa applications (`visa`,
//! `visa_applications`), and application types with their ordered stages and the college
//! applications that move through them (`application_types`, `stages`, `college_applications`).

pub mod application_types;
pub mod college_applications;
pub mod stages;
pub mod visa;
pub mod visa_applications;
